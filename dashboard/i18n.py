"""The dashboard's language per request: the account's setting, else the browser's ``Accept-Language``
(Babel's negotiation), else ``WANFLOW_LOCALE``; the template context that installs that locale's gettext,
ngettext and formatter (jinja2.ext.i18n, ``{% trans %}``); and the translation of the messages the API and
the pages return (fixed messages by their msgid, messages with values by a pattern that pulls the values out).
"""

from __future__ import annotations

import re

from fastapi import Request
from markupsafe import Markup

from core.i18n import N_
from core.l10n import Formatter, negotiate, translations
from wan_tasks.queue import STATUS_LABELS
from wan_tasks.review import REJECT_REASONS

# Messages of the stages below (English, with values): shown translated, the values kept.
PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = tuple((re.compile(p), m) for p, m in (
    (r"asset (?P<id>\d+) was already decided", N_("clip #%(id)s was already decided")),
    (r"asset (?P<id>\d+) has no review task \(not a clip that passed QC\)",
     N_("clip #%(id)s has no review task (not a clip that passed QC)")),
    (r"a rejection needs a reason \(--reason TEXT\)", N_("a rejection needs a reason: pick one or write a note")),
    (r"a request for changes needs an edited prompt, negative prompt or seed",
     N_("a request for changes needs an edited prompt, negative prompt or seed")),
    (r"a (?P<role>\w+) cannot decide on clips", N_("a %(role)s cannot decide on clips")),
    (r"the approval stage of this brand's two-stage policy needs an approver",
     N_("the approval stage of this brand's two-stage policy needs an approver")),
    (r"(?P<name>.+) approved this clip at the review stage; the final approval needs someone else",
     N_("%(name)s approved this clip at the review stage; the final approval needs someone else")),
    (r"reason_code: unknown reason '(?P<code>[^']*)' \(one of .*\)", N_("unknown reason %(code)s")),
    (r"too many failed sign-ins for this name: try again in (?P<n>\d+) minutes?",
     N_("too many failed sign-ins for this name: try again in %(n)s minute(s)")),
))
ROLES = {"viewer": N_("viewer"), "reviewer": N_("reviewer"), "approver": N_("approver"), "admin": N_("admin")}
DECISIONS = {"approve": N_("approved"), "reject": N_("rejected"), "request_changes": N_("changes requested")}
STAGES = {"review": N_("review"), "approval": N_("approval")}
CLIP_STATUS = {"generated": N_("generated"), "qc_failed": N_("QC failed"), "in_review": N_("in review"),
               "approved": N_("approved"), "rejected": N_("rejected"), "changes_requested": N_("changes requested"),
               "delivered": N_("delivered"), "pending": N_("pending"), "decided": N_("decided")}
QC = {"pass": N_("pass"), "fail": N_("fail"), "not run": N_("not run"), "needs_review": N_("needs review"),
      "block": N_("blocked"), "unchecked": N_("not checked")}
# the strings dashboard.js shows (toasts), handed to it translated in the page
JS = {"approved": N_("approved"), "rejected": N_("rejected"), "decided_first": N_("Someone else decided first"),
      "by": N_("by"), "not_recorded": N_("Not recorded"), "clip": N_("Clip"), "to": N_("to")}


def request_locale(request: Request) -> str:
    """The language of this request: the account's, else Accept-Language, else the deployment's default."""
    chosen = getattr(request.state, "user_locale", None)
    if chosen:
        return chosen
    return negotiate(request.headers.get("accept-language"), request.app.state.settings.locale)


def translate(locale: str, message: str) -> str:
    """A message for the page in ``locale``: a catalog msgid, or a known message with values, else as it is."""
    t = translations(locale)
    found = t.gettext(message)
    if found != message or locale == "en":
        return found
    for pattern, msgid in PATTERNS:
        m = pattern.fullmatch(message)
        if m:
            values = m.groupdict()
            if "role" in values:
                values["role"] = t.gettext(ROLES.get(values["role"], values["role"]))
            return t.gettext(msgid) % values
    return message


def say(request: Request, message: str) -> str:
    """``message`` for the reader of ``request``, in their language."""
    return translate(request_locale(request), message)


def reason_text(locale: str, code: str | None, reason: str | None) -> str | None:
    """A recorded rejection's reason for display: the reason code's label in ``locale``, then the note.

    The record keeps the code and the English label it was decided with; only the display is translated."""
    if not reason or not code or code == "other" or code not in REJECT_REASONS:
        return reason
    english = REJECT_REASONS[code]
    note = reason[len(english):].removeprefix(": ") if reason.startswith(english) else reason
    label = translations(locale).gettext(english)
    return f"{label}: {note}" if note else label


def context(request: Request) -> dict:
    """Template context of every page (a Jinja2Templates context processor): the locale's gettext for
    ``{% trans %}`` and ``_()``, its formatter, and the tables that turn codes into words."""
    locale = request_locale(request)
    t = translations(locale)
    fmt = Formatter(locale, request.app.state.settings.timezone)
    words = {**ROLES, **DECISIONS, **STAGES, **CLIP_STATUS, **QC}

    def word(code: object) -> str:  # a code (status, role, stage, decision, outcome) in words
        text = str(getattr(code, "value", code) or "")
        return t.gettext(words[text]) if text in words else text.replace("_", " ")

    return {"gettext": t.gettext, "ngettext": t.ngettext, "_": t.gettext, "locale": locale, "fmt": fmt,
            "word": word, "say": lambda message: translate(locale, str(message)), "reason_text": lambda code, reason: reason_text(locale, code, reason),
            "status_labels": {k: t.gettext(v) for k, v in STATUS_LABELS.items()},
            "reject_reasons": {k: t.gettext(v) for k, v in REJECT_REASONS.items()},
            "js_strings": {k: t.gettext(v) for k, v in JS.items()},
            "nbsp": Markup("&nbsp;")}
