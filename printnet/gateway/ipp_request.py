"""What an IPP request says, checked: RFC 8011's request rules, value lengths, the
job template attributes as `JobOptions`, and printnet errors as IPP statuses.

Pure (no I/O): `printnet.gateway.ipp_door` calls these for every request.
"""

from __future__ import annotations

from typing import Any, Final

from printnet.config import Config
from printnet.errors import (
    AuthRequired,
    Forbidden,
    PrintnetError,
    SpoolError,
    SpoolFull,
    UsageError,
    ValidationError,
)
from printnet.gateway import ipp_attrs
from printnet.gateway.context import (
    FormatNotSupported,
    JobOptions,
    LimitExceeded,
    PasswordRequired,
)
from printnet.gateway.documents import DocumentInvalid
from printnet.ipp import codec
from printnet.ipp.codec import Attribute, Group, Message
from printnet.ipp.enums import GroupTag, Status, Tag
from printnet.model import clean_text, normalize_name, valid_job_id, valid_name

# RFC 8011 5.1: the longest value of each syntax.
MAX_LENGTH: Final = {Tag.TEXT: 1023, Tag.NAME: 255, Tag.KEYWORD: 255, Tag.URI: 1023,
                     Tag.URI_SCHEME: 63, Tag.CHARSET: 63, Tag.NATURAL_LANGUAGE: 63,
                     Tag.MIME_MEDIA_TYPE: 255, Tag.OCTET_STRING: 1023,
                     Tag.TEXT_WITH_LANGUAGE: 1023, Tag.NAME_WITH_LANGUAGE: 255,
                     Tag.MEMBER_ATTR_NAME: 255}
MAX_NAME: Final = 255  # attribute names


class IppError(PrintnetError):
    """An operation's failure with its IPP status (and the attributes to blame)."""

    def __init__(self, status: Status, message: str,
                 unsupported: list[Attribute] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.unsupported = unsupported or []




def check_request(msg: Message) -> Group:
    """RFC 8011 4.1: version, request-id, the operation group and its first attributes."""
    if msg.version[0] not in (1, 2):
        raise IppError(Status.SERVER_ERROR_VERSION_NOT_SUPPORTED,
                       f"IPP {msg.version[0]}.{msg.version[1]} is not supported "
                       "(1.0, 1.1, 2.0 are)")
    if msg.request_id <= 0:
        raise IppError(Status.CLIENT_ERROR_BAD_REQUEST, "request-id must be 1 or more")
    if not msg.groups or msg.groups[0].tag != GroupTag.OPERATION:
        raise IppError(Status.CLIENT_ERROR_BAD_REQUEST, "no operation attributes")
    for g in msg.groups:
        if g.tag not in (GroupTag.OPERATION, GroupTag.JOB, GroupTag.DOCUMENT):
            raise IppError(Status.CLIENT_ERROR_BAD_REQUEST,
                           f"unexpected attribute group {g.tag:#x} in a request")
    if len(msg.groups_of(GroupTag.OPERATION)) > 1:
        raise IppError(Status.CLIENT_ERROR_BAD_REQUEST, "two operation attribute groups")
    op = msg.groups[0]
    names = [x.name for x in op.attributes]
    if names[:2] != ["attributes-charset", "attributes-natural-language"]:
        raise IppError(Status.CLIENT_ERROR_BAD_REQUEST,
                       "attributes-charset and attributes-natural-language must come "
                       "first")
    charset = op.attributes[0]
    if charset.tag != Tag.CHARSET or len(charset.values) != 1:
        raise IppError(Status.CLIENT_ERROR_BAD_REQUEST, "bad attributes-charset")
    if str(charset.value).lower() not in ("utf-8", "us-ascii"):
        raise IppError(Status.CLIENT_ERROR_CHARSET_NOT_SUPPORTED,
                       f"charset {clean_text(str(charset.value), 40)} is not supported",
                       [charset])
    if op.attributes[1].tag != Tag.NATURAL_LANGUAGE or len(op.attributes[1].values) != 1:
        raise IppError(Status.CLIENT_ERROR_BAD_REQUEST, "bad attributes-natural-language")
    for g in msg.groups:
        for attr in g.attributes:
            check_lengths(attr)
    if op.get("printer-uri") is None and op.get("job-uri") is None:
        raise IppError(Status.CLIENT_ERROR_BAD_REQUEST, "no printer-uri or job-uri")
    for name in ("printer-uri", "job-uri"):
        target = op.get(name)
        if target is not None and (target.tag != Tag.URI or len(target.values) != 1):
            raise IppError(Status.CLIENT_ERROR_BAD_REQUEST, f"bad {name}", [target])
    return op



def job_options(msg: Message, op: Group, printer: str, cfg: Config | None
                ) -> tuple[JobOptions, list[Attribute]]:
    """JobOptions from the operation and job groups; the attributes ignored."""
    ignored: list[Attribute] = []
    fidelity = bool_of(op, "ipp-attribute-fidelity", False)
    title = text_of(op, "job-name") or ""
    password = None
    pw = op.get("job-password")
    if pw is not None:
        if pw.tag != Tag.OCTET_STRING or len(pw.values) != 1 or len(pw.value) > 255:
            raise IppError(Status.CLIENT_ERROR_BAD_REQUEST,
                           "job-password must be one octetString (at most 255)")
        enc = text_of(op, "job-password-encryption") or "none"
        if enc != "none":
            raise IppError(Status.CLIENT_ERROR_ATTRIBUTES_OR_VALUES_NOT_SUPPORTED,
                           "job-password-encryption: only none",
                           [op.get("job-password-encryption")])  # type: ignore[list-item]
        password = bytes(pw.value).decode("utf-8", "replace")
    compression = op.get("compression")
    if compression is not None and compression.value != "none":
        raise IppError(Status.CLIENT_ERROR_COMPRESSION_NOT_SUPPORTED,
                       f"compression {clean_text(str(compression.value), 20)} is not "
                       "supported (none is)", [compression])
    opts: dict[str, Any] = {"printer": printer, "title": title, "password": password}
    for group in msg.groups_of(GroupTag.JOB):
        for attr in group.attributes:
            if not job_attribute(attr, opts, cfg):
                ignored.append(attr)
    if ignored and fidelity:
        raise IppError(Status.CLIENT_ERROR_ATTRIBUTES_OR_VALUES_NOT_SUPPORTED,
                       "unsupported job attributes with ipp-attribute-fidelity",
                       ignored)
    try:
        return JobOptions(**opts), ignored
    except TypeError as exc:
        raise IppError(Status.CLIENT_ERROR_BAD_REQUEST, str(exc)) from None

def job_attribute(attr: Attribute, opts: dict[str, Any], cfg: Config | None) -> bool:
    """Apply one job template attribute to `opts`; False when it is not supported."""
    v, tag, one = attr.value, attr.tag, len(attr.values) == 1
    name = attr.name
    if name == "copies" and tag == Tag.INTEGER and one:
        if not 1 <= int(v) <= 999:
            return False
        opts["copies"] = int(v)
    elif name == "job-priority" and tag == Tag.INTEGER and one and 1 <= int(v) <= 100:
        opts["priority"] = "high" if v > 66 else "standard" if v > 33 else "overnight"
    elif name == "job-hold-until" and tag in (Tag.KEYWORD, Tag.NAME) and one:
        if v == "indefinite":
            opts["hold"] = True
        elif v == "night":
            opts["priority"] = "overnight"
        elif v != "no-hold":
            return False
    elif name == "job-sheets" and tag in (Tag.KEYWORD, Tag.NAME) and v in ("none",
                                                                            "standard"):
        opts["header"] = v == "standard"
    elif name == "printnet-job-id" and tag in (Tag.NAME, Tag.KEYWORD, Tag.TEXT) and one:
        if not valid_job_id(str(v)):
            return False
        opts["forward_id"] = str(v)  # forwarded from another site (printnet.spool.forward)
    elif name == "printnet-site" and tag in (Tag.NAME, Tag.KEYWORD, Tag.TEXT) and one:
        site = normalize_name(str(v))
        if not valid_name(site):
            return False
        opts["site"] = site  # the branch a forwarded job comes from (header pages)
    elif name == "printnet-setup" and tag in (Tag.NAME, Tag.KEYWORD, Tag.TEXT) and one:
        opts["setup"] = normalize_name(str(v))
    elif name == "media" and tag in (Tag.KEYWORD, Tag.NAME) and one:
        setup = ipp_attrs.setup_of_media(cfg, str(v))
        if setup is None:
            return False
        opts["setup"] = setup
    elif (name, v) in NO_OPS and one:
        pass  # what every printnet printer does anyway
    else:
        return False
    return True

def document_format(op: Group) -> str:
    fmt = op.get("document-format")
    if fmt is None:
        return "application/octet-stream"
    if fmt.tag != Tag.MIME_MEDIA_TYPE or len(fmt.values) != 1:
        raise IppError(Status.CLIENT_ERROR_BAD_REQUEST, "bad document-format", [fmt])
    return str(fmt.value).split(";")[0].strip().lower()



NO_OPS: Final = frozenset({
    ("sides", "one-sided"), ("print-quality", 4), ("orientation-requested", 3),
    ("finishings", 3), ("number-up", 1), ("output-bin", "top"),
    ("printer-resolution", (72, 72, 3)), ("print-color-mode", "monochrome"),
    ("multiple-document-handling", "separate-documents-uncollated-copies"),
    ("multiple-document-handling", "single-document"),
})


def text_of(group: Group, name: str) -> str | None:
    attr = group.get(name)
    if attr is None or not attr.values:
        return None
    value = attr.value
    if isinstance(value, tuple):  # textWithLanguage
        value = value[1]
    if not isinstance(value, str):
        raise IppError(Status.CLIENT_ERROR_BAD_REQUEST, f"{name} must be text", [attr])
    return clean_text(value, 1023)


def bool_of(group: Group, name: str, default: bool) -> bool:
    attr = group.get(name)
    if attr is None:
        return default
    if attr.tag != Tag.BOOLEAN or len(attr.values) != 1:
        raise IppError(Status.CLIENT_ERROR_BAD_REQUEST, f"{name} must be one boolean", [attr])
    return bool(attr.value)


def keywords_of(group: Group, name: str) -> list[str] | None:
    attr = group.get(name)
    if attr is None:
        return None
    if attr.tag != Tag.KEYWORD:
        raise IppError(Status.CLIENT_ERROR_BAD_REQUEST, f"{name} must be keywords", [attr])
    return [str(v) for v in attr.plain()]


def check_compression(op: Group) -> None:
    c = op.get("compression")
    if c is not None and c.value != "none":
        raise IppError(Status.CLIENT_ERROR_COMPRESSION_NOT_SUPPORTED,
                       "only compression none is supported", [c])


def check_lengths(attr: Attribute) -> None:
    if len(attr.name.encode()) > MAX_NAME:
        raise IppError(Status.CLIENT_ERROR_REQUEST_VALUE_TOO_LONG,
                       f"attribute name longer than {MAX_NAME} bytes")
    for v in attr.values:
        limit = MAX_LENGTH.get(v.tag)  # type: ignore[call-overload]
        if limit is None:
            continue
        if isinstance(v.value, str) and 4 * len(v.value) <= limit:
            continue  # no character encodes to more than 4 bytes: short enough unencoded
        raw = codec.encode_value(v.tag, v.value)
        if len(raw) > limit + (4 if v.tag in (Tag.TEXT_WITH_LANGUAGE,
                                              Tag.NAME_WITH_LANGUAGE) else 0):
            raise IppError(Status.CLIENT_ERROR_REQUEST_VALUE_TOO_LONG,
                           f"{clean_text(attr.name, 60)}: a value of {len(raw)} bytes is over "
                           f"the {limit} allowed", [attr])


def status_of(exc: PrintnetError) -> Status:
    if isinstance(exc, FormatNotSupported):
        return Status.CLIENT_ERROR_DOCUMENT_FORMAT_NOT_SUPPORTED
    if isinstance(exc, DocumentInvalid):
        return Status.CLIENT_ERROR_DOCUMENT_FORMAT_ERROR
    if isinstance(exc, LimitExceeded):
        if exc.field == "copies":
            return Status.CLIENT_ERROR_ATTRIBUTES_OR_VALUES_NOT_SUPPORTED
        return Status.CLIENT_ERROR_REQUEST_ENTITY_TOO_LARGE
    if isinstance(exc, PasswordRequired):
        return Status.CLIENT_ERROR_NOT_AUTHORIZED
    if isinstance(exc, SpoolFull):
        return Status.SERVER_ERROR_NOT_ACCEPTING_JOBS
    if isinstance(exc, SpoolError):
        return Status.SERVER_ERROR_TEMPORARY_ERROR
    if isinstance(exc, UsageError) and "unknown printer" in str(exc):
        return Status.CLIENT_ERROR_NOT_FOUND
    if isinstance(exc, UsageError | ValidationError):
        return Status.CLIENT_ERROR_ATTRIBUTES_OR_VALUES_NOT_SUPPORTED
    return Status.SERVER_ERROR_INTERNAL_ERROR


def ipp_error(exc: PrintnetError) -> PrintnetError:
    if isinstance(exc, AuthRequired | Forbidden | IppError):
        return exc
    return IppError(status_of(exc), str(exc))
