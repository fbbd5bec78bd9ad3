"""The console's wire format: a parsed console command and its reply.

Owns `Command` (one console command as a client sent it) and `Reply` (what it
answers), and their JSON form, which `printnet.control` carries over the
server's socket::

    command: {"argv": [...], "password": str|null, "new_password": str|null,
              "confirm": bool, "cwd": str|null}
    reply:   {"ok", "text", "data", "error", "code", "needs", "question"}

`needs` is "password", "new_password" or "confirm" when the client must ask its
user and send the command again (`printnet.console.session.Session.exchange`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Final

from printnet.errors import UsageError

MAX_ARGS: Final = 256
MAX_ARG: Final = 4096
TERMINAL: Final = "the server terminal"  # the origin of a command typed at the server


@dataclass
class Command:
    """One console command line as a client sent it (not the request file of a job)."""

    argv: list[str]
    password: str | None = None
    new_password: str | None = None
    confirm: bool = False
    cwd: str | None = None
    origin: str = TERMINAL

    @classmethod
    def from_json(cls, obj: dict[str, Any], origin: str) -> Command:
        argv = obj.get("argv")
        if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
            raise UsageError("argv must be a list of strings")
        if len(argv) > MAX_ARGS or any(len(a) > MAX_ARG for a in argv):
            raise UsageError("command line too long")
        cwd = obj.get("cwd")
        return cls(
            argv=list(argv),
            password=_opt_str(obj.get("password")),
            new_password=_opt_str(obj.get("new_password")),
            confirm=obj.get("confirm") is True,
            cwd=cwd if isinstance(cwd, str) and os.path.isabs(cwd) else None,
            origin=origin,
        )


def _opt_str(value: object) -> str | None:
    return value if isinstance(value, str) else None


@dataclass
class Reply:
    """What a command answers: text for people, data for programs."""

    ok: bool = True
    text: str = ""
    data: Any = None
    error: str = ""
    code: int = 0
    needs: str = ""  # "password" | "new_password" | "confirm": ask, then send again
    question: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "text": self.text, "data": self.data, "error": self.error,
                "code": self.code, "needs": self.needs, "question": self.question}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Reply:
        code = obj.get("code")
        return cls(
            ok=obj.get("ok") is True,
            text=str(obj.get("text") or ""),
            data=obj.get("data"),
            error=str(obj.get("error") or ""),
            code=code if isinstance(code, int) and not isinstance(code, bool) else 1,
            needs=str(obj.get("needs") or ""),
            question=str(obj.get("question") or ""),
        )

    @classmethod
    def failure(cls, error: str, code: int = 1, data: Any = None) -> Reply:
        return cls(ok=False, error=error, code=code, data=data)


def split_json(argv: list[str]) -> tuple[list[str], bool]:
    """The arguments without `--json`, and whether it was there."""
    rest = [a for a in argv if a != "--json"]
    return rest, len(rest) != len(argv)
