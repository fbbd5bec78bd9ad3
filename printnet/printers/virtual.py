"""The common base of printnet's own pyserial ports (`file://`, `sim://`).

Owns what a port without a real line has to say to pyserial: there are no
RTS, DTR or break lines to drive, so those hooks do nothing.
"""

from __future__ import annotations

from serial.serialutil import SerialBase


class VirtualPort(SerialBase):
    """A pyserial port with no modem lines (subclasses add open, write, ...)."""

    def _update_rts_state(self) -> None:
        """No RTS line."""

    def _update_dtr_state(self) -> None:
        """No DTR line."""

    def _update_break_state(self) -> None:
        """No break condition."""
