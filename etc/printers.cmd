; etc/printers.cmd -- the printers this server drives and the setups they can
; mount (a setup: the form, i.e. the paper, and the page geometry).
;
; One command per line; ";" starts a comment (except inside "double quotes").
; Keywords, keys and names may be typed in any case.  The console's CP command
; edits this file and keeps these comments.  docs/CONFIG.md describes every key.

; PRINTER name PORT=port [KEY=VALUE ...]
;   PORT=     /dev/ttyS0, /dev/ttyUSB0 (serial), socket://HOST:9100 (raw TCP),
;             rfc2217://HOST:PORT (serial over network), loop://,
;             sim://NAME?out=PATH (a simulated printer printing into PATH), or
;             file://PATH (append to a file).  A relative PATH is relative to
;             etc/; it must stay inside the project folder (the folder that
;             holds etc/) or a spool, and not inside etc/.
;   BAUD=9600 BITS=8 PARITY=N|E|O|M|S STOP=1|1.5|2 FLOW=NONE|XONXOFF|RTSCTS|DSRDTR
;   DRIVER=PLAIN|ESCP   SETUP=setup mounted at start (default STANDARD)
;   HEADER=name         header template etc/<name>.hdr; NONE: no header pages;
;                       omitted: the built-in header page
;   CLASS=A,B           classes (printer pools) this printer serves
;   ERRORS=RETRY|HOLD|ABORT  STALL=30  RETRY=5   (seconds)
;   ACCEPT=YES|NO REASON="text"  STOPPED=YES|NO  PASSWORD=qscrypt$...
;   MAXCOPIES=n MAXBYTES=n[K|M|G] MAXFILE=n[K|M|G] MAXPAGES=n   (per job)
;   OVERLIMIT=REJECT|HOLD  a job over a MAX... limit is rejected (default) or held
;   SEAL=ON|OFF            take only sealed documents (default: SEAL in server.cmd)
;   LOGO=file              text art for the header page's {logo} (relative to etc/)
;   A remote printer (PORT=ipp://, ipps://, spool:), while its link is down:
;   LINKDOWN=QUEUE         jobs wait here, retried with back-off (the default);
;            LINKHOLD=hours  after that long they are held and the operator told
;            LINKRETRY=secs  the longest wait between attempts (RETRY= doubled; 300)
;   LINKDOWN=LOCAL PRINTER=name   jobs print on that local printer meanwhile
;   LINKDOWN=REJECT        new jobs are refused with the reason
;   LINKNAME=name          how notes name the remote (default: the port's host)
;
; The embedded default printer appends to <project>/output/LOCAL.prn.
PRINTER LOCAL PORT=file://../output/LOCAL.prn SETUP=STANDARD HEADER=LOCAL

; Examples:
;   a serial dot-matrix printer with XON/XOFF flow control
;PRINTER R&D PORT=/dev/ttyS0 BAUD=9600 BITS=8 PARITY=N STOP=1 FLOW=XONXOFF SETUP=STANDARD
;   a raw TCP line printer (port 9100) with checks mounted, in class LINES
;PRINTER LINEPRINTER PORT=socket://10.1.2.3:9100 DRIVER=ESCP SETUP=CHECKS CLASS=LINES
;   the central office's printer, through its gateway; while the link is down
;   its jobs print on LOCAL
;PRINTER HQLASER PORT=ipp://central.example:8631/ipp/print/HQLASER LINKDOWN=LOCAL PRINTER=LOCAL LINKNAME=HQ
;   a simulated printer (no hardware) that runs at its baud rate
;PRINTER SIMULATED PORT=sim://SIMULATED?out=../output/SIMULATED.prn BAUD=9600 SETUP=LABELS HEADER=NONE

; SETUP name FORM=paper LENGTH=lines WIDTH=characters [INIT=bytes] [ENCODING=set]
;   FORM: the paper that must be loaded (a job asking for setup CHECKS waits
;   until a printer has it mounted).  LENGTH 3..255, WIDTH 10..255.
;   INIT: bytes an intelligent driver sends first: \xNN, \e (ESC), \\.
;   ENCODING: the printer's character set (cp437, latin-1, cp850, cp1252, ascii,
;   utf-8, ...): text jobs are converted to it, what it lacks printed as a
;   look-alike or "?".  Default: the driver's (PLAIN latin-1, ESCP cp437).
SETUP STANDARD FORM=PLAIN LENGTH=66 WIDTH=80
SETUP CHECKS FORM=CHECKS LENGTH=22 WIDTH=80
SETUP LABELS FORM=LABELS LENGTH=12 WIDTH=40

; DEFAULT name
;   The printer (or class) for requests that name none.
DEFAULT LOCAL
