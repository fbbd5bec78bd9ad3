# Sourced by scripts/test: install the Debian packages listed in
# scripts/test-packages that are missing, saying so.  apt waits up to
# 5 minutes for another apt/dpkg to let go of its lock instead of failing.
install_test_packages() {
  local list="$1" missing=() all=() pkg
  while read -r pkg _; do
    [ -z "$pkg" ] || [ "${pkg:0:1}" = "#" ] && continue
    all+=("$pkg")
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done < "$list"
  if [ "${#missing[@]}" -eq 0 ]; then
    echo "== packages: all ${#all[@]} test packages present (${all[*]})"
    return 0
  fi
  echo "== packages: installing ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "scripts/test: missing Debian packages (${missing[*]}) and not root to install them" >&2
    return 1
  fi
  local apt=(apt-get -o DPkg::Lock::Timeout=300 -y -q)
  DEBIAN_FRONTEND=noninteractive "${apt[@]}" update -qq >/dev/null || {
    echo "scripts/test: apt-get update failed" >&2; return 1; }
  DEBIAN_FRONTEND=noninteractive "${apt[@]}" install --no-install-recommends "${missing[@]}" >/dev/null || {
    echo "scripts/test: apt-get install ${missing[*]} failed" >&2; return 1; }
  echo "== packages: installed ${missing[*]}"
}
