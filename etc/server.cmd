; etc/server.cmd -- this print server's settings.
;
; One command per line; ";" starts a comment (except inside "double quotes").
; Keywords and keys may be typed in any case.  The console's CS command edits
; this file and keeps these comments.  docs/CONFIG.md describes every command.

; SERVER NAME=name
;   This server's name, as status and the other servers show it.  Without
;   NAME= (or --name) the host name is used, upper-cased.
SERVER

; SPOOL folder
;   A spool (a folder on a shared disk, or a local one) this server serves; one
;   line per spool, served round-robin.  A relative path is relative to the
;   folder that holds etc/.
;   Without any SPOOL line the spool is <that folder>/spool.
SPOOL spool
;SPOOL /mnt/net1/printnet
;SPOOL /mnt/net2/printnet

; PASSWORD hash
;   The console password, stored hashed (scrypt); the console's CS command sets
;   it.  Without PASSWORD the console asks for no password.
;PASSWORD scrypt$16384$8$1$...

; NIGHT start,end
;   The overnight window in local hours 0-23: overnight jobs print from start
;   o'clock until end o'clock.  It may wrap midnight (22,6).
NIGHT 0,6

; SCAN seconds
;   How often new/ is scanned for requests (0.05..60 seconds).
SCAN 1

; LEASE seconds
;   How long a lock or a printing job stays held without renewal before another
;   server may take it over (0.5..3600 seconds).
LEASE 30

; OPERATORS user,user,@group
;   Users who may cancel, hold and release anyone's jobs; @group names the
;   members of a Unix group.
OPERATORS root

; QUOTA who PAGES=n [PER=DAY|WEEK|MONTH] [PRINTER=name] [ACTION=HOLD|REJECT]
;   Pages a user may print per period (default WEEK); who is * (everyone), a
;   user name or @group.  One line per rule.  A job over the quota is held with
;   a note (an operator may release it) or, with ACTION=REJECT, rejected.
;QUOTA * PAGES=500 PER=WEEK
;QUOTA @students PAGES=50 PER=DAY PRINTER=LASER ACTION=REJECT

; HELDEXPIRY hours
;   Held jobs are canceled (with a note) after this many hours held.
;HELDEXPIRY 72

; MINFREE MiB
;   Below this much free space on a spool's disk, new requests are refused.
;MINFREE 100

; SEAL ON|OFF
;   ON: every printer of this server takes only sealed documents (a printer's
;   SEAL= overrides it).  Stations encrypt each document to the print servers'
;   public keys before it reaches the shared disk; only servers can read it,
;   in memory while printing.  Create the keys first: `printnet keys create`.
;   See docs/SECURITY.md (Sealing documents).
;SEAL ON

; KEYS folder
;   This server's private sealing keys: a local folder (0700, files 0600), never
;   on the spool.  Default /var/lib/printnet/keys; $PRINTNET_KEYS overrides it.
;KEYS /var/lib/printnet/keys

; SITE name [LOGO=file]
;   This site's name: header pages show it ({site}), and requests submitted here
;   carry it, so a central office that prints them knows the branch.  LOGO= is
;   the site's text-art logo for header pages ({logo}; relative to etc/; a
;   printer's LOGO= overrides it).  docs/SITES.md.
;SITE BRANCH1 LOGO=branch1.logo
