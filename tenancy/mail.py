"""Mail as the platform sends it: a text body and the same words as HTML in the brand of the
tenant (or the platform) it is about, links clickable."""

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string


def branded(message: EmailMultiAlternatives, brand: dict) -> EmailMultiAlternatives:
    """The message with an HTML alternative of its text, in the brand's name, color and logo
    (a message that has one already keeps it)."""
    if not any(kind == "text/html" for _, kind in message.alternatives):
        paragraphs = [p.strip() for p in str(message.body).split("\n\n") if p.strip()]
        html = render_to_string("mail/message.html", {"brand": brand, "paragraphs": paragraphs})
        message.attach_alternative(html, "text/html")
    return message


def send(subject: str, text: str, to: list[str], brand: dict) -> None:
    message = EmailMultiAlternatives(subject, text, None, to)
    branded(message, brand).send()


def on_console() -> bool:
    """No mail server is set up (`make run`): mail is printed on the web process's console,
    and pages that send some say so."""
    return settings.EMAIL_BACKEND.endswith("console.EmailBackend")
