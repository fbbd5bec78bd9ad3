"""IPP/2.0 (RFC 8010/8011): the pure message codec (`codec`) and its numbers (`enums`).

Reusable by any side: the gateway's IPP door is a server on it; an ipp://
printer port can be a client on it.
"""
