"""printnet: a print-request queue kept on a shared disk.

Stations drop request files into a spool directory; print servers on any host
that mounts it cooperate only through files.  See docs/DESIGN.md.
"""

__version__ = "0.1.0"
