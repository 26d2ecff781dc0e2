"""A brand's delivery policy: framing (fill or fit), pad colour and the visible "AI-generated" label.

It is the ``delivery:`` block of a brand profile (see :mod:`governance.brand`)::

    delivery:
      framing: fill                  # fill: crop to the format; fit: scale inside it and pad
      pad_color: "#FFFFFF"           # the brand colour used by fit
      ai_label:                      # optional visible label (EU AI Act Art. 50 transparency)
        enabled: true
        text: {en: "AI-generated", ja: "AI生成"}   # per locale; `en` is the fallback
        position: bottom-right       # top-left | top-right | bottom-left | bottom-right
        size: 0.035                  # text height as a fraction of the video height
        font: null                   # a TTF/OTF/TTC file; default DejaVu Sans or Pillow's own font
      watermark:                     # the invisible watermark every video rendition carries (docs/provenance.md)
        required: false              # true: publish refuses a rendition whose watermark does not read back

Unknown keys are an error, like everywhere else in the profile.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from governance.watermark import WatermarkPolicy

HEX_COLOR = re.compile(r"^#[0-9A-Fa-f]{6}$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AiLabel(_Model):
    enabled: bool = True
    text: dict[str, str] = Field(default_factory=lambda: {"en": "AI-generated"})
    position: Literal["top-left", "top-right", "bottom-left", "bottom-right"] = "bottom-right"
    size: float = Field(default=0.035, gt=0.005, le=0.2)
    font: str | None = None

    @model_validator(mode="after")
    def _fallback(self) -> AiLabel:
        if "en" not in self.text:
            raise ValueError("text must include an `en` entry (the fallback for other locales)")
        if not all(isinstance(v, str) and v.strip() for v in self.text.values()):
            raise ValueError("every text must be a non-empty string")
        return self

    def text_for(self, locale: str) -> tuple[str, str]:
        """The label text for a locale (``ja-JP`` → ``ja`` → ``en``) and the locale actually used."""
        for key in (locale, locale.split("-")[0].split("_")[0], "en"):
            if key in self.text:
                return self.text[key], key
        return self.text["en"], "en"  # unreachable: `en` is required


class DeliveryPolicy(_Model):
    framing: Literal["fill", "fit"] = "fill"
    pad_color: str = "#000000"
    ai_label: AiLabel | None = None
    watermark: WatermarkPolicy = Field(default_factory=WatermarkPolicy)

    @field_validator("pad_color")
    @classmethod
    def _hex(cls, v: str) -> str:
        if not HEX_COLOR.match(v):
            raise ValueError(f"must be a colour like '#1A2B3C', got {v!r}")
        return v.upper()

    @property
    def pad_rgb(self) -> tuple[int, int, int]:
        return tuple(int(self.pad_color[i:i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]


def parse_delivery(data: object) -> DeliveryPolicy:
    """Validate the ``delivery`` block; raise ValueError('<key.path>: message') on the first problem."""
    if data is None:
        return DeliveryPolicy()
    try:
        return DeliveryPolicy.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(["delivery", *(str(p) for p in err["loc"])])
        msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        raise ValueError(f"{where}: {msg}") from None
