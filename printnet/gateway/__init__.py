"""`printnet gateway`: front doors (IPP, LPD, a web page) into a printnet spool.

Every job that enters through a door becomes an ordinary request in `new/`:
the servers, locks, master file, priorities and accounting are unchanged.

Modules: `context` (identity, submit, control, queue views: what every door
shares), `settings` (etc/gateway.cmd), `auth` (HTTP Basic and the identity
rules), `ipp_door` (IPP/2.0 operations over `printnet.ipp.codec`), `jobs`
(IPP job states from the master file and done/), `documents` (page counts),
`app` (the one aiohttp application and asyncio loop), `web` (the page and
/api) and `lpd` (RFC 1179).
"""
