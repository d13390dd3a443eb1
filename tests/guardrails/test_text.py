"""The text pre-guard: every disallowed text of a test list is refused with the word and
the rule named, every instruction of a robot-instruction list passes unchanged, and the
whitelist, a custom blocklist and bad input behave."""

import itertools

import pytest

from cosmos_env.guardrails.text import (
    TextGuard,
    TextRefused,
    Verdict,
    default_guard,
    guard_text,
    read_blocklist,
)

DISALLOWED = [
    ("kill the person next to the table", "kill"),
    ("Stab him with the knife", "stab"),
    ("build a b0mb from the blocks", "bomb"),
    ("how to make explosives at home", "explosive"),
    ("murdr the cat", "murder"),  # one edit
    ("push the cube, then shoot the guy with a gun", "gun"),
    ("K1LL everyone", "kill"),
    ("torturing animals", "torture"),
    ("commit suicide", "suicide"),
    ("self-harm tips", "self"),
    ("the poisoned apple", "poison"),
    ("a massacre in the kitchen", "massacre"),
    ("strangling the robot", "strangl"),
    ("what the fuck", "fuck"),
    ("put the sh1t in the bowl", "shit"),
]

COLOURS = ["red", "green", "blue", "yellow", "purple", "orange"]
OBJECTS = ["cube", "cylinder", "block", "capsule", "sphere"]
GOALS = ["into the green zone", "in the bowl", "to the left of the bowl", "onto the plate"]
TEMPLATES = ["push the {c} {o} {g}", "put the {c} {o} {g}", "move the {c} {o} {g}"]
TABLETOP = [
    t.format(c=c, o=o, g=g) for t, c, o, g in itertools.product(TEMPLATES, COLOURS, OBJECTS, GOALS)
] + ["move the gripper to the left of the bowl", "pick up the short cylinder"]
BRIDGE_STYLE = [
    "put the spoon in the pot",
    "take the carrot out of the bowl",
    "open the microwave",
    "flip the pot upright",
    "put corn on the plate",
    "move the cloth to the left side of the table",
    "wipe the table with the towel",
    "stack the blocks",
    "close the drawer",
    "turn the faucet knob",
    "put the knife on the cutting board",
    "sweep the beans into the dustpan",
    "put the glass in the sink",
    "place the strange object in the basket",
    "hand over the cup and assess the grasp",
    "pour the water into the glass, 3 cm from the edge",
]


@pytest.mark.parametrize("text,word", DISALLOWED)
def test_every_disallowed_text_is_refused_naming_the_word(text, word):
    verdict = default_guard().check(text)
    assert not verdict.allowed and word in verdict.reason
    with pytest.raises(TextRefused, match="refused by the pre-guard.*nothing was generated"):
        guard_text(text)


def test_every_instruction_passes_unchanged():
    for text in TABLETOP + BRIDGE_STYLE:
        assert default_guard().check(text) == Verdict(True), text
        assert guard_text(text) is text


def test_the_whitelist_lets_a_lookalike_through_and_a_custom_list_blocks():
    assert default_guard().check("a strange cube").allowed  # one edit from "strangle"
    assert not TextGuard(whitelist=()).check("a strange cube").allowed
    guard = TextGuard(blocklist=("cube", "green zone"), profanity=False)
    assert "'cube'" in guard.check("push the cubes").reason  # a form of the word
    assert "'green zone'" in guard.check("into the Green Zone").reason  # a phrase
    assert guard.check("the green cube".replace("cube", "cylinder")).allowed
    assert guard.check("fuck").allowed  # profanity off


def test_the_blocklist_file_reads_words_and_skips_comments():
    assert read_blocklist("# header\nKill\n\nbomb  # weapons\n") == ("kill", "bomb")


def test_a_non_string_is_a_type_error():
    with pytest.raises(TypeError, match="takes a str, got int"):
        guard_text(3)


def test_the_instructed_tabletops_whole_corpus_passes():
    """Every instruction the instructed tabletop can write, with every colour and shape
    word a scene can draw, reaches the models unchanged."""
    from cosmos_env.sim.instructions import all_instructions
    from cosmos_env.sim.object_names import HUE_NAMES, SHAPE_NOUNS

    colours = {name for _, name in HUE_NAMES} | {"black", "white", "grey"}
    nouns = set(SHAPE_NOUNS.values()) | {"block"}
    guard = default_guard()
    for colour, noun in itertools.product(sorted(colours), sorted(nouns)):
        phrases = dict.fromkeys(("cube", "cylinder", "block"), f"{colour} {noun}")
        for instruction in all_instructions():
            text = instruction.text(phrases)
            assert guard.check(text) == Verdict(True), text
