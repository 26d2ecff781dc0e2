"""Does a brief fit the Wan variant its model resolves to? Sizes the variant supports, images for I2V.

A size outside a variant's supported list is refused (``file:row:width``); a size the variant only advises
against is accepted with a warning, which is also written on each job. An image-to-video model needs a
conditioning image on every item; a text-to-video model takes none.
"""

from __future__ import annotations

from governance.brief_schema import BriefInvalid, Problem, ValidBrief
from governance.variants import Preset, UnknownVariant, preset_for


def preset_or_none(variant: str | None) -> Preset | None:
    try:
        return preset_for(variant) if variant else None
    except UnknownVariant:
        return None


def check_fit(brief: ValidBrief, variant: str | None) -> list[str]:
    """Raise BriefInvalid on a misfit; return warnings (``file:row:width: …``) for advised-against sizes."""
    preset = preset_or_none(variant)
    if preset is None:
        return []
    problems: list[Problem] = []
    warnings: list[str] = []
    for spec in [*brief.items, *(r.item for r in brief.rejected)]:
        size = preset.check_size(spec.width, spec.height)
        if size.error:
            problems.append(Problem(spec.source_file, spec.row, "width", size.error))
        elif size.warning:
            warnings.append(str(Problem(spec.source_file, spec.row, "width", f"advised against: {size.warning}")))
        if preset.task == "i2v" and not spec.image:
            problems.append(Problem(spec.source_file, spec.row, "image",
                                    f"model {brief.model_ref} is image-to-video ({preset.name}): every item needs "
                                    "a conditioning image"))
        if preset.task == "t2v" and spec.image:
            problems.append(Problem(spec.source_file, spec.row, "image",
                                    f"model {brief.model_ref} is text-to-video ({preset.name}): it takes no "
                                    "conditioning image (use a wan-i2v model)"))
    if problems:
        raise BriefInvalid(problems)
    return warnings
