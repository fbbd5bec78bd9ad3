"""`printnet gateway`: front doors (IPP, LPD, a web page) into a printnet spool.

Every job that enters through a door becomes an ordinary request in `new/`:
the servers, locks, master file, priorities and accounting are unchanged.

Modules: `context` (submit with group commit, control, queue views: what
every door shares), `settings` (etc/gateway.cmd), `auth` (HTTP Basic and the
identity rules), `ipp_door` (HTTP and the IPP/2.0 operations over
`printnet.ipp.codec`), `ipp_request` (the request rules, attributes to job
options), `ipp_attrs` (printer and job attributes), `jobs` (IPP job ids and
states from the master file and done/), `documents` (page counts), `app` (the
one aiohttp application and asyncio loop), `web` (the page and /api) and
`lpd` (RFC 1179).
"""
