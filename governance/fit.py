"""Does a brief fit the Wan variant its model resolves to? Sizes the variant supports, images for I2V, fps.

A size outside a variant's supported list is refused (``file:row:width``); a size the variant only advises
against is accepted with a warning, which is also written on each job. An image-to-video model needs a
conditioning image on every item; a text-to-video model takes none; Wan 2.2 TI2V-5B takes either. A frame rate
other than the one the model renders at (16 fps for Wan 2.1 and the A14B models, 24 for TI2V-5B) is accepted
with a warning (``file:row:fps``): the clip is written at the brief's rate, so its motion plays faster or
slower than the model made it; renditions convert frame rates as for any clip.
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
        if spec.fps != preset.fps and not preset.stand_in:  # a stand-in's motion has no rate of its own
            pace = "faster" if spec.fps > preset.fps else "slower"
            warnings.append(str(Problem(spec.source_file, spec.row, "fps",
                                        f"{spec.fps} fps asked, but {preset.name} renders at {preset.fps} fps: its "
                                        f"frames written at {spec.fps} fps play {spec.fps / preset.fps:.2f}x "
                                        f"({pace}); use fps: {preset.fps} and let renditions convert")))
        if preset.task == "i2v" and not spec.image:
            problems.append(Problem(spec.source_file, spec.row, "image",
                                    f"model {brief.model_ref} is image-to-video ({preset.name}): every item needs "
                                    "a conditioning image"))
        if preset.task == "t2v" and spec.image:
            problems.append(Problem(spec.source_file, spec.row, "image",
                                    f"model {brief.model_ref} is text-to-video ({preset.name}): it takes no "
                                    "conditioning image (use a wan-i2v model)"))
    if brief.lora and brief.lora.low_noise_path and not preset.moe:
        problems.append(Problem(str(brief.path), None, "lora.low_noise_path",
                                f"model {brief.model_ref} ({preset.name}) has one transformer: a low-noise LoRA "
                                "is for a Wan 2.2 A14B model (two experts); give only `path`"))
    if problems:
        raise BriefInvalid(problems)
    return warnings
