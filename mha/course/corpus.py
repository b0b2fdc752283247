"""Chapter 8: the sentences the real heads are tested on, written for the course.

Nothing here comes from a published data set. The hand-written sentences and
pairs below, and the word lists the templates draw from, were written for this
course; :func:`build_corpus` expands them (seeded) into the groups Chapter 8
uses, and ``python -m mha.course.corpus`` writes the result to
``mha/course/data/corpus.json``, which :func:`load_corpus` reads.

Groups (each sentence is a plain string; indices count word pieces, ``[CLS]`` = 0):

* ``frames``: "{A} didn't {verb} {B} {link} {C} {verb2} the {noun}", 13 word pieces each,
  so every slot sits at the same position in every sentence (the lens controls);
* ``knew_pairs``: the article's clause "because he knew the {noun}" in four
  versions per frame (as is, a word inserted, a name for "he", clauses swapped);
* ``pronoun_pairs``: "John told Mary that he/she ...": the same sentence with the
  pronoun swapped, so only the antecedent changes (the coreference probe);
* ``paraphrase_pairs``: sentence pairs with a label, 1 = paraphrase, 0 = not;
* ``general``: varied hand-written sentences (relative-offset statistics).
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np

__all__ = ["DATA", "SLOTS", "build_corpus", "load_corpus", "write_corpus"]

DATA = Path(__file__).parent / "data" / "corpus.json"
NOTE = "Written for the course mha (Chapter 8); not taken from any published data set."

# Word-piece positions of the frame slots ([CLS] = 0; "didn't" is didn ' t).
SLOTS = {"A": 1, "didn": 2, "verb": 5, "B": 6, "link": 7, "C": 8, "verb2": 9, "noun": 11}
MEN = ["john", "tom", "peter", "david", "paul", "james", "mark", "george"]
WOMEN = ["mary", "anna", "lucy", "emma", "sarah", "kate", "alice", "helen"]
SUBJECTS = ["he", "she", "they", *MEN[:4], *WOMEN[:4]]
OBJECTS = ["him", "her", "them", *MEN[4:], *WOMEN[4:]]
VERBS = ["trust", "help", "call", "believe", "thank", "pay", "follow", "warn", "blame", "forgive"]
LINKS = ["because", "although", "while", "after", "since", "until", "when", "before"]
VERBS2 = ["knew", "saw", "heard", "feared", "hid", "told", "found", "kept"]
NOUNS = ["secret", "truth", "answer", "plan", "story", "price", "name", "letter", "key", "code"]
ADVERBS = ["already", "really", "finally", "suddenly", "never", "always", "clearly", "also"]
ADJECTIVES = ["late", "tired", "angry", "sick", "happy", "wrong", "right", "lost"]

# Pronoun frames: {X} and {Y} are a man and a woman; {p} is he or she.
PRONOUN_FRAMES = [
    "{X} told {Y} that {p} was {adj}.",
    "{X} called {Y} because {p} was {adj}.",
    "{X} thanked {Y} after {p} found the {noun}.",
    "{X} met {Y} when {p} was {adj}.",
    "{X} warned {Y} that {p} had lost the {noun}.",
    "{X} waited for {Y} because {p} had the {noun}.",
]

# Hand-written paraphrase pairs (label 1) and related but different pairs (label 0).
PARAPHRASES = [
    ("He didn't trust him because he knew the secret.",
     "He distrusted him since he was aware of the secret."),
    ("The meeting was moved to Friday.", "They rescheduled the meeting for Friday."),
    ("She bought a new car last week.", "Last week she purchased a new car."),
    ("The shop closes at six.", "The store shuts at six o'clock."),
    ("I can't find my keys.", "My keys are missing and I can't locate them."),
    ("The film was very boring.", "The movie was extremely dull."),
    ("He passed the exam easily.", "He had no trouble passing the test."),
    ("It is raining heavily outside.", "There is a heavy rain outside."),
    ("The children are playing in the garden.", "The kids are playing in the yard."),
    ("Please close the door.", "Could you shut the door, please?"),
    ("The train was late again.", "Once more the train did not arrive on time."),
    ("She is afraid of dogs.", "Dogs frighten her."),
    ("We finished the project ahead of schedule.", "The project was completed early."),
    ("The soup is too hot to eat.", "The soup is so hot that nobody can eat it."),
    ("He forgot her birthday.", "Her birthday slipped his mind."),
    ("The company hired ten new workers.", "Ten new employees joined the company."),
    ("My brother lives in Paris.", "Paris is where my brother lives."),
    ("They won the match by two goals.", "They beat the other team by two goals."),
    ("The price of bread went up.", "Bread has become more expensive."),
    ("She told the truth.", "She did not lie."),
    ("The road is closed for repairs.", "The road cannot be used while it is repaired."),
    ("He speaks three languages.", "He can talk in three different languages."),
    ("The lake froze overnight.", "During the night the lake turned to ice."),
    ("I will call you tomorrow.", "Tomorrow I will phone you."),
]  # fmt: skip
NON_PARAPHRASES = [
    ("He didn't trust him because he knew the secret.",
     "He trusted him because he didn't know the secret."),
    ("The meeting was moved to Friday.", "The meeting was cancelled on Friday."),
    ("She bought a new car last week.", "She sold her old car last week."),
    ("The shop closes at six.", "The shop opens at six."),
    ("I can't find my keys.", "I found my keys in the car."),
    ("The film was very boring.", "The film was very exciting."),
    ("He passed the exam easily.", "He failed the exam badly."),
    ("It is raining heavily outside.", "It is sunny and dry outside."),
    ("The children are playing in the garden.", "The children are sleeping in their beds."),
    ("Please close the door.", "Please open the window."),
    ("The train was late again.", "The train left early today."),
    ("She is afraid of dogs.", "Dogs are afraid of her."),
    ("We finished the project ahead of schedule.", "We started the project behind schedule."),
    ("The soup is too hot to eat.", "The soup is too cold to eat."),
    ("He forgot her birthday.", "She forgot his birthday."),
    ("The company hired ten new workers.", "The company fired ten old workers."),
    ("My brother lives in Paris.", "My sister works in Rome."),
    ("They won the match by two goals.", "They lost the match by two goals."),
    ("The price of bread went up.", "The price of milk went down."),
    ("She told the truth.", "She told a lie."),
    ("The road is closed for repairs.", "The road was reopened after repairs."),
    ("He speaks three languages.", "He writes three books a year."),
    ("The lake froze overnight.", "The lake dried up over the summer."),
    ("I will call you tomorrow.", "You called me yesterday."),
]  # fmt: skip
# Active and passive of one event are paraphrases; the same words with the roles swapped are not.
AGENTS = ["dog", "teacher", "police", "doctor", "storm", "girl", "manager", "farmer"]
PATIENTS = ["cat", "student", "thief", "patient", "village", "boy", "team", "horse"]
ACTIONS = [("chased", "chased"), ("praised", "praised"), ("caught", "caught"),
           ("helped", "helped"), ("saw", "seen"), ("hit", "hit"), ("called", "called"),
           ("followed", "followed")]  # fmt: skip

GENERAL = [
    "The old man sat by the window and watched the rain.",
    "After dinner we walked along the river until it got dark.",
    "My sister, who lives in Berlin, is a nurse.",
    "Nobody knew where the money had gone.",
    "If you heat ice, it melts.",
    "The library opens at nine and closes at five.",
    "She wrote a long letter to her grandmother.",
    "Why did the chicken cross the road?",
    "The committee approved the budget after a long debate.",
    "He has never been to the sea.",
    "Birds build nests in the spring.",
    "The students who studied hard passed the exam.",
    "I would rather stay at home tonight.",
    "The bridge was built more than a hundred years ago.",
    "When the bell rang, the children ran outside.",
    "Tom gave Anna a book, and she thanked him.",
    "Mary said that she would come, but she never did.",
    "The cat that chased the mouse was very fast.",
    "We need more time to finish this work.",
    "The teacher asked the students to open their books.",
    "Although it was late, the shop was still open.",
    "He lost his wallet on the bus.",
    "The sun rises in the east and sets in the west.",
    "They have lived in this house for twenty years.",
    "Could you tell me the way to the station?",
    "The doctor told the patient that he needed rest.",
    "John promised Mary that he would help her.",
    "The painting was sold for a very high price.",
    "Most people like music of some kind.",
    "She didn't answer because she was asleep.",
    "The farmer planted corn in the northern field.",
    "Two of the windows were broken during the storm.",
    "The police stopped the car and checked the driver.",
    "I forgot to bring my umbrella, so I got wet.",
    "The book on the table belongs to my brother.",
    "Peter and Lucy got married last summer.",
    "Because the road was icy, the bus drove slowly.",
    "The baby slept through the whole night.",
    "Everyone in the room was waiting for the news.",
    "He opened the box and found an old photograph.",
    "The manager thanked the team for their hard work.",
    "Water boils at a hundred degrees.",
    "The dog barked at the stranger at the gate.",
    "She keeps her promises.",
    "The train to London leaves in ten minutes.",
    "Emma told Sarah that the plan had failed.",
    "It took them three days to cross the mountains.",
    "The museum is closed on Mondays.",
    "He didn't say a word during the whole meeting.",
    "The letter arrived two weeks after it was sent.",
]


def _frames(rng: np.random.Generator, n: int) -> list[dict[str, str]]:
    """``n`` seeded frames: one word for each slot of the frame template."""
    lists = {"A": SUBJECTS, "verb": VERBS, "B": OBJECTS, "link": LINKS, "C": SUBJECTS,
             "verb2": VERBS2, "noun": NOUNS}  # fmt: skip
    return [{slot: str(rng.choice(words)) for slot, words in lists.items()} for _ in range(n)]


def frame_sentence(f: dict[str, str]) -> str:
    """The frame sentence of one slot assignment (Chapter 8)."""
    w = {k: v.capitalize() if v in MEN + WOMEN else v for k, v in f.items()}
    text = f"{w['A']} didn't {w['verb']} {w['B']} {w['link']} {w['C']} {w['verb2']} the {w['noun']}"
    return text[0].upper() + text[1:]


def _knew_pairs(rng: np.random.Generator, n: int) -> list[dict[str, str]]:
    """The article's "because he knew the {noun}" with the three manipulations, per frame.

    The main clause always starts with "He", so every version has two "he" (as the article).
    """
    out = []
    for f in _frames(rng, n):
        head = f"he didn't {f['verb']} {f['B']}"
        adverb, name = str(rng.choice(ADVERBS)), str(rng.choice(MEN))
        out.append({
            "original": f"He{head[2:]} because he knew the {f['noun']}",
            "inserted": f"He{head[2:]} because he {adverb} knew the {f['noun']}",
            "name": f"He{head[2:]} because {name.capitalize()} knew the {f['noun']}",
            "swapped": f"Because he knew the {f['noun']}, {head}",
        })  # fmt: skip
    return out


def _pronoun_pairs(rng: np.random.Generator) -> list[dict]:
    """Each frame with a man and a woman, in both orders, and both pronouns."""
    out = []
    for frame, (man, woman) in itertools.product(
        PRONOUN_FRAMES, zip(MEN[:4], WOMEN[:4], strict=True)
    ):
        adj, noun = str(rng.choice(ADJECTIVES)), str(rng.choice(NOUNS))
        for x, y in ((man, woman), (woman, man)):
            fill = {"X": x.capitalize(), "Y": y.capitalize(), "adj": adj, "noun": noun}
            out.append({
                "he": frame.format(p="he", **fill), "she": frame.format(p="she", **fill),
                "man": man, "woman": woman,
            })  # fmt: skip
    return out


def _paraphrase_pairs() -> list[dict]:
    """Paraphrases (label 1); contrasts, same words but another meaning, and unrelated (label 0)."""
    pairs = [{"a": a, "b": b, "label": 1, "kind": "paraphrase"} for a, b in PARAPHRASES]
    pairs += [{"a": a, "b": b, "label": 0, "kind": "contrast"} for a, b in NON_PARAPHRASES]
    for agent, patient, (past, participle) in zip(AGENTS, PATIENTS, ACTIONS, strict=True):
        active = f"The {agent} {past} the {patient}."
        passive = f"The {patient} was {participle} by the {agent}."
        swapped = f"The {agent} was {participle} by the {patient}."
        pairs.append({"a": active, "b": passive, "label": 1, "kind": "paraphrase"})
        pairs.append({"a": active, "b": swapped, "label": 0, "kind": "contrast"})
    others = [b for _, b in PARAPHRASES]
    for i, (a, _) in enumerate(PARAPHRASES):  # each sentence with the paraphrase of the next one
        pairs.append({"a": a, "b": others[(i + 1) % len(others)], "label": 0, "kind": "unrelated"})
    return pairs


def build_corpus(seed: int = 0, num_frames: int = 240, num_knew: int = 40) -> dict:
    """Every group of the Chapter 8 corpus, seeded (see the module docstring)."""
    rng = np.random.default_rng(seed)
    frames = _frames(rng, num_frames)
    return {
        "note": NOTE,
        "seed": seed,
        "frames": [{"text": frame_sentence(f), **f} for f in frames],
        "knew_pairs": _knew_pairs(rng, num_knew),
        "pronoun_pairs": _pronoun_pairs(rng),
        "paraphrase_pairs": _paraphrase_pairs(),
        "general": list(GENERAL),
    }


def write_corpus(path: Path = DATA) -> Path:
    """Write :func:`build_corpus` to ``path`` as JSON (``python -m mha.course.corpus``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(build_corpus(), indent=1) + "\n")
    return path


def load_corpus(path: Path = DATA) -> dict:
    """The committed corpus (Chapter 8)."""
    return json.loads(Path(path).read_text())


if __name__ == "__main__":
    print(f"wrote {write_corpus().name}")
