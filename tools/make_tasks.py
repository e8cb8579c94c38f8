#!/usr/bin/env python3
"""Regenerate the small task data sets shipped with tf_rl_text (translation, summarization, dialogue).

Everything here was written for this project: hand-made sentence templates, word lists and
their German forms, filled in with a seeded random generator. No external text or data set.

A build-time tool: only its outputs ship, in tf_rl_text/default_data/tasks/ (written there unless
--out is given):

    translation.jsonl    150 {"source": English, "target": German} short sentence pairs
    summarization.jsonl   80 {"source": 3-sentence news text, "target": one-sentence summary}
    dialogue.jsonl        40 {"turns": [4-6 messages]} short two-person conversations

Usage:
    python3 tools/make_tasks.py

Deterministic for a given SEED: a rerun writes byte-identical files.
"""
import argparse
import json
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tf_rl_text.data.tasks import TASKS  # noqa: E402  (the repository's package, not an installed one)

SEED = 20240612
N_TRANSLATION, N_SUMMARIZATION, N_DIALOGUE = 150, 80, 40
DEFAULT_OUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tf_rl_text", "default_data",
                           "tasks")

# --------------------------------------------------------------------------- translation (en -> de)
# (english, german, plural?) ; German nominative forms.
PEOPLE = [
    ("a man", "ein Mann", False), ("a woman", "eine Frau", False), ("a boy", "ein Junge", False),
    ("a girl", "ein Mädchen", False), ("an old man", "ein alter Mann", False),
    ("a young woman", "eine junge Frau", False), ("two men", "zwei Männer", True),
    ("two women", "zwei Frauen", True), ("the children", "die Kinder", True), ("a child", "ein Kind", False),
]
ANIMALS = [("a dog", "ein Hund", False), ("the cat", "die Katze", False), ("two dogs", "zwei Hunde", True)]
# (en singular, en plural, de singular, de plural)
INTRANSITIVE = [
    ("is sitting", "are sitting", "sitzt", "sitzen"), ("is standing", "are standing", "steht", "stehen"),
    ("is running", "are running", "läuft", "laufen"), ("is sleeping", "are sleeping", "schläft", "schlafen"),
    ("is playing", "are playing", "spielt", "spielen"), ("is waiting", "are waiting", "wartet", "warten"),
]
PLACES = [
    ("on a bench", "auf einer Bank"), ("in the park", "im Park"), ("on the street", "auf der Straße"),
    ("in the snow", "im Schnee"), ("at the beach", "am Strand"), ("in the kitchen", "in der Küche"),
    ("near the water", "am Wasser"), ("in front of a house", "vor einem Haus"), ("under a tree", "unter einem Baum"),
    ("in the garden", "im Garten"),
]
# verb -> accusative objects
TRANSITIVE = [
    (("is eating", "are eating", "isst", "essen"),
     [("an apple", "einen Apfel"), ("a sandwich", "ein Sandwich"), ("a pizza", "eine Pizza"), ("a cake", "einen Kuchen")]),
    (("is reading", "are reading", "liest", "lesen"),
     [("a book", "ein Buch"), ("a newspaper", "eine Zeitung"), ("a letter", "einen Brief")]),
    (("is holding", "are holding", "hält", "halten"),
     [("a ball", "einen Ball"), ("a cup", "eine Tasse"), ("a flower", "eine Blume"), ("a camera", "eine Kamera")]),
    (("is carrying", "are carrying", "trägt", "tragen"),
     [("a bag", "eine Tasche"), ("a box", "eine Kiste"), ("a chair", "einen Stuhl")]),
    (("is throwing", "are throwing", "wirft", "werfen"), [("a ball", "einen Ball"), ("a stone", "einen Stein")]),
]
# wearing: adjective stems and clothes by gender -> accusative endings
COLORS = [("red", "rot"), ("blue", "blau"), ("green", "grün"), ("black", "schwarz"), ("white", "weiß"), ("yellow", "gelb")]
CLOTHES = [("hat", "Hut", "m"), ("coat", "Mantel", "m"), ("jacket", "Jacke", "f"), ("cap", "Mütze", "f"),
           ("shirt", "Hemd", "n"), ("dress", "Kleid", "n")]
ACC_ARTICLE = {"m": ("einen", "en"), "f": ("eine", "e"), "n": ("ein", "es")}


def _sentence(en, de):
    return en[0].upper() + en[1:] + ".", de[0].upper() + de[1:] + "."


def make_translation(rng):
    pairs, seen = [], set()
    while len(pairs) < N_TRANSLATION:
        kind = rng.choice(["intransitive", "intransitive", "transitive", "transitive", "wearing"])
        if kind == "intransitive":
            (s_en, s_de, plural) = rng.choice(PEOPLE + ANIMALS)
            v = rng.choice(INTRANSITIVE)
            p_en, p_de = rng.choice(PLACES)
            en = f"{s_en} {v[1] if plural else v[0]} {p_en}"
            de = f"{s_de} {v[3] if plural else v[2]} {p_de}"
        elif kind == "transitive":
            (s_en, s_de, plural) = rng.choice(PEOPLE)
            v, objects = rng.choice(TRANSITIVE)
            o_en, o_de = rng.choice(objects)
            en = f"{s_en} {v[1] if plural else v[0]} {o_en}"
            de = f"{s_de} {v[3] if plural else v[2]} {o_de}"
            if rng.random() < 0.5:
                p_en, p_de = rng.choice(PLACES)
                en, de = f"{en} {p_en}", f"{de} {p_de}"
        else:
            (s_en, s_de, plural) = rng.choice(PEOPLE)
            c_en, c_de = rng.choice(COLORS)
            k_en, k_de, gender = rng.choice(CLOTHES)
            article, ending = ACC_ARTICLE[gender]
            en = f"{s_en} {'are' if plural else 'is'} wearing a {c_en} {k_en}"
            de = f"{s_de} {'tragen' if plural else 'trägt'} {article} {c_de}{ending} {k_de}"
        if en in seen:
            continue
        seen.add(en)
        src, tgt = _sentence(en, de)
        pairs.append({"source": src, "target": tgt})
    return pairs


# --------------------------------------------------------------------------- summarization
# actor, event (past tense, what the summary keeps), detail sentences, reactions
ACTORS = ["the town library", "the city council", "a local bakery", "the primary school", "the small museum",
          "the football club", "the hospital", "the train company", "the river park", "the music school"]
EVENTS = [
    ("opened a new {thing}", ["The {thing} has room for forty people.", "Work on the {thing} took almost a year."]),
    ("closed its old {thing}", ["The {thing} had been in use for thirty years.", "A new {thing} is planned for next year."]),
    ("raised the price of its {thing}", ["The {thing} now costs two euros more.", "Costs for energy and staff went up."]),
    ("won a prize for its {thing}", ["The prize came with a small sum of money.", "A jury of five people chose the {thing}."]),
    ("asked for volunteers to help with its {thing}", ["Helpers are needed on weekends.", "No experience is needed."]),
    ("repaired its {thing}", ["The repair took three weeks.", "The {thing} had been damaged in a storm."]),
]
THINGS = ["reading room", "garden", "playground", "cafe", "bus service", "summer course", "website", "roof",
          "concert hall", "sports hall"]
REACTIONS = [
    ("Many visitors said they were pleased.", "and visitors were pleased"),
    ("Some neighbours complained about the noise.", "despite complaints about noise"),
    ("The mayor thanked everyone who helped.", "and the mayor thanked the helpers"),
    ("Local families welcomed the news.", "and families welcomed the news"),
    ("Several people asked for more information.", "and people asked for details"),
]
DAYS = ["On Monday", "On Tuesday", "Last week", "This morning", "On Friday", "Yesterday"]


def make_summarization(rng):
    items, seen = [], set()
    while len(items) < N_SUMMARIZATION:
        actor, (event, details), thing = rng.choice(ACTORS), rng.choice(EVENTS), rng.choice(THINGS)
        reaction, tail = rng.choice(REACTIONS)
        key = (actor, event, thing)
        if key in seen:
            continue
        seen.add(key)
        what = event.format(thing=thing)
        lead = f"{rng.choice(DAYS)}, {actor} {what}."
        detail = rng.choice(details).format(thing=thing)
        sentences = [lead, detail, reaction] if rng.random() < 0.7 else [detail, lead, reaction]
        source = " ".join(s[0].upper() + s[1:] for s in sentences)
        target = f"{actor[0].upper() + actor[1:]} {what} {tail}."
        items.append({"source": source, "target": target})
    return items


# --------------------------------------------------------------------------- dialogue
NAMES = ["Anna", "Ben", "Clara", "David", "Emma", "Felix", "Greta", "Hugo"]
DIALOGUE_TOPICS = [
    lambda r, s: [
        f"Hi, what did you do this weekend?",
        f"I went to the {s['place']} with my {s['person']}.",
        f"That sounds nice. Was it {s['adj']}?",
        f"Yes, it was really {s['adj']}. We want to go again {s['time']}.",
        f"Maybe I can come with you {s['time']}.",
    ],
    lambda r, s: [
        f"Are you hungry? I want to get some {s['food']}.",
        f"Yes, I love {s['food']}. Where do you want to go?",
        f"There is a small place near the {s['place']}.",
        f"Great, let us go there {s['time']}.",
    ],
    lambda r, s: [
        f"What are you reading at the moment?",
        f"A book about {s['topic']}. It is very {s['adj']}.",
        f"I did not know you liked {s['topic']}.",
        f"My {s['person']} gave it to me, and now I cannot stop reading.",
        f"Can I borrow it when you are done?",
        f"Of course, I will bring it {s['time']}.",
    ],
    lambda r, s: [
        f"How is the weather where you are?",
        f"It is {s['weather']} today. How about you?",
        f"Here it is {s['weather2']}, so I will stay inside.",
        f"Good idea. I will go to the {s['place']} later.",
    ],
    lambda r, s: [
        f"Do you have any pets?",
        f"Yes, I have a {s['pet']} called {s['name']}.",
        f"How old is {s['name']}?",
        f"{s['name']} is {s['age']} years old and very {s['adj']}.",
        f"I would love to meet {s['name']} one day.",
    ],
]
SLOTS = {
    "place": ["park", "beach", "lake", "museum", "market", "cinema", "library", "zoo"],
    "person": ["sister", "brother", "friend", "mother", "father", "cousin"],
    "adj": ["fun", "relaxing", "interesting", "exciting", "beautiful", "quiet"],
    "time": ["next week", "tomorrow", "on Sunday", "next month", "tonight"],
    "food": ["pizza", "soup", "noodles", "ice cream", "salad", "pancakes"],
    "topic": ["history", "space", "birds", "cooking", "music", "the ocean"],
    "weather": ["sunny and warm", "cold and windy", "rainy", "cloudy", "hot"],
    "weather2": ["raining all day", "very cold", "stormy", "foggy"],
    "pet": ["dog", "cat", "rabbit", "parrot", "turtle"],
    "name": NAMES,
    "age": ["two", "three", "five", "seven", "ten"],
}


def make_dialogue(rng):
    items, seen = [], set()
    while len(items) < N_DIALOGUE:
        topic = rng.randrange(len(DIALOGUE_TOPICS))
        slots = {k: rng.choice(v) for k, v in SLOTS.items()}
        turns = DIALOGUE_TOPICS[topic](rng, slots)
        key = tuple(turns)
        if key in seen:
            continue
        seen.add(key)
        items.append({"turns": turns})
    return items


def write_jsonl(path, records):
    with open(path, "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=DEFAULT_OUT)
    out = parser.parse_args().out
    rng = random.Random(SEED)
    # the file names are the task registry's (tf_rl_text.data.tasks.TASKS); the order fixes the random draws
    written = []
    for task, make in (("translation", make_translation), ("summarization", make_summarization),
                       ("dialogue", make_dialogue)):
        name = TASKS[task].embedded
        write_jsonl(os.path.join(out, name), make(rng))
        written.append(name)
    print(f"wrote {', '.join(written)} to {out}")


if __name__ == "__main__":
    main()
