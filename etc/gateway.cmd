; etc/gateway.cmd -- the gateway's doors (printnet gateway; docs/GATEWAY.md).
; Without this file the gateway behaves as below: claimed user names (IPP
; requesting-user-name, LPD's P line) are believed from this host only.
AUTH TRUST NETWORKS=127.0.0.0/8,::1/128
; AUTH BASIC                       ; passwords from the users file (printnet gateway --set-password USER)
; AUTH NONE USER=guest             ; every job belongs to one guest account
; TLS CERT=gateway.pem KEY=gateway.key   ; IPPS and HTTPS (paths relative to etc/)
TIMEOUT 30                         ; seconds a client may stall
