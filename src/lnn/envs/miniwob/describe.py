"""What MiniWoB's shapes tasks ask for, read from the instruction: the part attributes a description names.

Kept apart from the oracles (whose module source keys the recording caches): reading the instruction changes no
recorded episode.
"""

from __future__ import annotations

import re

from lnn.envs.base import PART_ATTRIBUTES

# MiniWoB's shapes tasks describe a shape as [large|small] [colour] (its text | its type | "item"), some parts left
# out at random (shapes.js generalDesc); count-shape asks for the plural ("How many large Qs are there?")
SHAPE_QUESTIONS = (re.compile(r"Click on a (.+)"), re.compile(r"How many (.+)s are there\?"))


def described_parts(task: str, instruction: str) -> dict[str, str]:
    """The part attributes (lnn.envs.PART_ATTRIBUTES) that click-shape's or count-shape's instruction names, by
    attribute: "Click on a large red Q" -> {size: large, color: red, text: Q}; "... a digit" -> {type: digit};
    nothing for another task's instruction, or a description this grammar does not produce."""
    return read_description(task, instruction) or {}


def read_description(task: str, instruction: str) -> dict[str, str] | None:
    """described_parts, but None where the instruction is not a description of parts this grammar produces ({}: one
    that names nothing, "How many items are there?")."""
    if task not in ("click-shape", "count-shape"):
        return None
    match = next((m for m in (p.fullmatch(instruction.strip()) for p in SHAPE_QUESTIONS) if m), None)
    if match is None:
        return None
    *modifiers, last = match.group(1).split(" ")
    named = {}
    for word in modifiers:
        attribute = next((a for a in ("size", "color") if word in PART_ATTRIBUTES[a]), None)
        if attribute is None:
            return None
        named[attribute] = word
    if last in PART_ATTRIBUTES["type"]:  # letter, digit, shape
        named["type"] = last
    elif last in PART_ATTRIBUTES["text"]:
        named["text"] = last
    elif last != "item":
        return None
    return named
