"""Packaging that pyproject.toml cannot say.

The example configuration `printnet init` copies is the repository's top-level
etc/ (server.cmd, printers.cmd, header templates, and what other work adds there:
gateway.cmd, systemd/).  A wheel carries it as package data in printnet/defaults/:
`package_dir` maps that folder onto etc/, so there is one copy, never two to keep
in step.  An editable install or a checkout reads etc/ itself
(`printnet.config.defaults_folder`).
"""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["printnet*"]), "printnet.defaults"],
    package_dir={"printnet.defaults": "etc"},
    package_data={
        "printnet": ["py.typed", "gateway/static/*"],  # the web page (gateway/web.py)
        "printnet.defaults": ["*.cmd", "*.hdr", "systemd/*"],
    },
)
