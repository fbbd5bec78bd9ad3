"""The spool shell: spool layout, atomic publishing, lock files, the master store,
submission and intake.  Everything here touches the filesystem; the decisions it acts
on come from the pure core (`printnet.model`, `printnet.masterfile`, `printnet.lease`,
`printnet.scheduling`)."""
