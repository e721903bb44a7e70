"""Delivering the digest by e-mail: one multipart/alternative message (text + HTML) over SMTP.

The SMTP settings object is ``settings.smtp`` (host, port, user, password, sender,
recipients, starttls). STARTTLS is used when ``starttls`` is true (the default) and the
server's certificate is verified; port 465 speaks TLS from the first byte (SMTPS). No crawled
text goes into a header: the subject carries only the day and the count.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
from collections.abc import Sequence
from datetime import date
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import TYPE_CHECKING

from config.settings import SmtpSettings
from review.errors import DigestError

if TYPE_CHECKING:
    from review.digest import DigestItem

__all__ = ["build_message", "send_digest", "subject_line"]

logger = logging.getLogger(__name__)

SMTPS_PORT = 465


def subject_line(day: date, items: Sequence[DigestItem]) -> str:
    count = len(items)
    return f"defector-watch digest {day.isoformat()}: {count} new candidate{'' if count == 1 else 's'}"


def _recipients(smtp: SmtpSettings) -> tuple[str, ...]:
    return tuple(dict.fromkeys(r.strip() for r in smtp.recipients if r.strip()))


def build_message(smtp: SmtpSettings, subject: str, text: str, html: str) -> EmailMessage:
    """The e-mail: plain text first, HTML as the alternative a mail client prefers."""
    sender = smtp.sender or smtp.user
    recipients = _recipients(smtp)
    if not sender:
        raise DigestError(
            "cannot send the digest: no sender address; set smtp.sender in settings.yaml or DWATCH_SMTP_FROM"
        )
    if not recipients:
        raise DigestError(
            "cannot send the digest: no recipients; set smtp.recipients in settings.yaml or "
            "DWATCH_SMTP_TO (comma-separated)"
        )
    message = EmailMessage()
    try:
        message["Subject"] = subject
        message["From"] = sender
        message["To"] = ", ".join(recipients)
    except ValueError as exc:  # a newline or other header injection in the configuration
        raise DigestError(f"cannot send the digest: invalid sender or recipient address: {exc}") from exc
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = make_msgid(domain="defector-watch.invalid")
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message


def send_digest(
    smtp: SmtpSettings, subject: str, text: str, html: str, *, timeout: float = 30.0
) -> tuple[str, ...]:
    """Send the digest; return the recipients the server accepted. Raises ``DigestError``."""
    host, port = smtp.host, smtp.port
    if not host:
        raise DigestError("cannot send the digest: no SMTP host; set smtp.host or DWATCH_SMTP_HOST")
    message = build_message(smtp, subject, text, html)
    recipients = _recipients(smtp)
    user = smtp.user
    starttls = smtp.starttls
    where = f"SMTP server {host}:{port}"
    stage = "connecting to"
    try:
        if port == SMTPS_PORT:
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                host, port, timeout=timeout, context=ssl.create_default_context()
            )
        else:
            client = smtplib.SMTP(host, port, timeout=timeout)
        with client:
            client.ehlo()
            if starttls and port != SMTPS_PORT:
                stage = "starting TLS (STARTTLS) with"
                client.starttls(context=ssl.create_default_context())
                client.ehlo()
            if user:
                stage = f"logging in as {user!r} to"
                client.login(user, smtp.password or "")
            stage = "sending the message through"
            refused = client.send_message(message, to_addrs=list(recipients))
    except smtplib.SMTPNotSupportedError as exc:
        hint = ("the server does not offer STARTTLS; use a server that does, or set "
                "smtp.starttls: false (DWATCH_SMTP_STARTTLS=false) only for a trusted local relay"
                if stage.startswith("starting TLS") else "the server does not support this step")
        raise DigestError(f"digest not sent: {stage} {where}: {hint}") from exc
    except smtplib.SMTPAuthenticationError as exc:
        raise DigestError(
            f"digest not sent: {stage} {where}: the server refused the login ({exc.smtp_code}); "
            "check smtp.user and DWATCH_SMTP_PASSWORD"
        ) from exc
    except smtplib.SMTPRecipientsRefused as exc:
        raise DigestError(
            f"digest not sent: {where} refused every recipient: {', '.join(exc.recipients)}"
        ) from exc
    except (smtplib.SMTPException, OSError) as exc:  # ssl.SSLError and timeouts are OSErrors
        raise DigestError(
            f"digest not sent: {stage} {where} failed: {exc.__class__.__name__}: {exc}; "
            "check smtp.host/port (DWATCH_SMTP_HOST, DWATCH_SMTP_PORT) and the network"
        ) from exc
    for address, (code, reply) in refused.items():
        logger.warning("digest: %s refused recipient %s: %s %r", where, address, code, reply)
    accepted = tuple(r for r in recipients if r not in refused)
    logger.info("digest sent through %s to %s", where, ", ".join(accepted))
    return accepted
