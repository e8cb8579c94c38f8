#!/usr/bin/env python3
"""Regenerate the small default corpus and tokenizer shipped with tf_rl_text.

Everything here is written for this project: hand-made sentence templates and
word lists, filled in with a seeded random generator.  No external data.

A build-time tool: only its outputs ship, in tf_rl_text/default_data/ (written there unless
--out is given):

    corpus.txt           ~600 short lowercase sentences, one per line
    prompts.txt          ~60 short sentence beginnings, one per line
    positive_words.txt   positive lexicon, one word per line
    negative_words.txt   negative lexicon, one word per line
    tokenizer.json       byte-level BPE tokenizer (vocab 512) trained on
                         corpus.txt + prompts.txt  (needs `tokenizers`)

Usage:
    python3 tools/make_corpus.py            # everything
    python3 tools/make_corpus.py --no-tokenizer

The output is deterministic for a given SEED.
"""

import argparse
import collections
import os
import random
import re
import sys

SEED = 20240611
N_POSITIVE = 270
N_NEGATIVE = 270
N_NEUTRAL = 60
MIN_WORDS, MAX_WORDS = 6, 14
VOCAB_SIZE = 512
DEFAULT_OUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tf_rl_text", "default_data")
SPECIAL_TOKENS = ["<|endoftext|>", "<pad>"]  # ids 0 and 1

# ---------------------------------------------------------------------------
# Lexicons.  Every sentiment adjective used below must be in one of these, and
# every word of these must occur in the generated corpus (checked at the end).
# ---------------------------------------------------------------------------
POSITIVE_WORDS = sorted("""
good great kind warm friendly lovely beautiful wonderful fresh tasty delicious
bright sunny calm clean funny happy pleasant cheerful gentle perfect excellent
brilliant charming cozy nice sweet clever helpful exciting amazing relaxing
comfortable fantastic peaceful playful polite glad generous crisp quick quiet
smooth relaxed loved enjoyed
""".split())

NEGATIVE_WORDS = sorted("""
bad awful terrible cold rude dirty boring late slow stale bland noisy crowded
broken dull sad tired angry annoying gloomy rainy wet messy loud weak poor horrible
disappointing confusing ugly greasy soggy stressful lazy grumpy awkward
expensive uncomfortable bitter lonely bored upset cramped tedious unhelpful
hated
""".split())

# adjectives that read badly after "very" / "quite"
NON_GRADABLE = {"perfect", "excellent", "amazing", "fantastic", "brilliant",
                "wonderful", "awful", "terrible", "horrible", "broken"}
ADV_GRADABLE = ["very", "really", "quite", "so", "extremely"]
ADV_NON_GRADABLE = ["truly", "absolutely", "really"]

# nouns that do not take "a" ("a delicious soup" reads oddly)
MASS_NOUNS = {"weather", "air", "bread", "toast", "rice", "pasta", "soup",
              "coffee", "tea", "hot chocolate", "fish", "curry", "stew",
              "acting", "music", "popcorn", "work"}

PERSON_POS = ["kind", "friendly", "helpful", "polite", "generous", "cheerful",
              "pleasant", "lovely", "nice", "warm"]
PERSON_NEG = ["rude", "lazy", "grumpy", "slow", "unhelpful", "cold", "angry",
              "annoying", "awkward"]
FEEL_POS = ["happy", "calm", "glad", "cheerful", "relaxed", "peaceful"]
FEEL_NEG = ["sad", "tired", "angry", "bored", "upset", "lonely", "grumpy"]
# "we had a ___ time", "it was ___", "the whole day felt ___"
GENERAL_POS = ["great", "lovely", "wonderful", "fantastic", "pleasant", "nice",
               "good", "relaxing"]
GENERAL_NEG = ["awful", "terrible", "horrible", "bad", "boring", "stressful",
               "tedious"]

TIMES = ["yesterday", "last night", "this morning", "on sunday", "on saturday",
         "last weekend", "today", "on friday evening", "this afternoon",
         "on monday", "last week", "tonight"]
WEATHER_TIMES = ["yesterday", "today", "on sunday", "on saturday",
                 "last weekend", "last week", "on monday"]
RELATIVES = ["sister", "brother", "mother", "father", "friend", "neighbor",
             "cousin", "partner", "aunt", "uncle", "roommate", "grandmother"]
DAY_NOUNS = ["evening", "weekend", "afternoon", "morning", "holiday"]
SPANS = ["the afternoon", "the evening", "the morning", "saturday", "sunday",
         "the weekend", "the whole day"]


def G(sing=(), plur=(), pos=(), neg=(), own=(), main=False, revisit=False,
      dur=False, redo=None):
    """One group of nouns that share adjectives.

    own:     determiners other than "the" that fit ("my", "our")
    main:    can be the thing one enjoys / hates ("i really enjoyed the film")
    revisit: fits "..., so we will go back again soon"
    dur:     fits "... from start to finish"
    redo:    verb phrase for "i would happily ___ again"
    """
    return dict(sing=list(sing), plur=list(plur), pos=list(pos),
                neg=list(neg), own=list(own), main=main, revisit=revisit,
                dur=dur, redo=redo)


TOPICS = {
    "movies": dict(
        groups=[
            G(sing=["movie", "film", "plot", "ending", "story", "script",
                    "sequel", "cartoon", "documentary"],
              plur=["jokes", "scenes", "characters"],
              pos=["funny", "clever", "exciting", "brilliant", "charming",
                   "wonderful", "great", "good", "excellent", "amazing",
                   "fantastic", "beautiful", "lovely", "sweet", "perfect"],
              neg=["boring", "dull", "confusing", "awful", "terrible", "bad",
                   "disappointing", "weak", "poor", "horrible", "tedious",
                   "slow", "awkward", "annoying"],
              main=True, dur=True, redo="watch it"),
            G(sing=["acting", "soundtrack", "music"],
              pos=["brilliant", "excellent", "great", "good", "wonderful",
                   "beautiful", "lovely"],
              neg=["weak", "poor", "awful", "terrible", "bad", "loud", "dull"],
              main=True, dur=True),
            G(plur=["actors"],
              pos=["brilliant", "excellent", "great", "good", "wonderful",
                   "funny", "charming"],
              neg=["weak", "poor", "awful", "terrible", "bad", "dull",
                   "awkward"], main=True),
            G(sing=["cinema", "theater"],
              pos=["clean", "cozy", "quiet", "comfortable", "warm"],
              neg=["dirty", "crowded", "noisy", "cold"], revisit=True),
            G(plur=["seats"], pos=["comfortable", "clean"],
              neg=["uncomfortable", "dirty", "cramped", "broken"],
              revisit=True),
            G(sing=["popcorn"], pos=["fresh", "warm", "tasty"],
              neg=["stale", "cold", "soggy", "expensive", "greasy"],
              revisit=True),
        ],
        people=[("the staff", True), ("the usher", False),
                ("the man at the ticket desk", False)],
        places=["cinema", "theater", "film festival"],
        acts=["watching the film", "the movie", "the film",
              "seeing the new cartoon"],
        neutral=["we watched a film at the cinema",
                 "i bought two tickets for the new movie",
                 "my brother picked the movie for us",
                 "the film was about a family on a farm",
                 "we talked about the ending on the way home",
                 "the movie lasted almost two hours",
                 "i watched a documentary about the ocean",
                 "we sat in the third row at the cinema",
                 "the cartoon was about a small robot"],
    ),
    "food": dict(
        groups=[
            G(sing=["soup", "pasta", "curry", "pizza", "fish", "rice", "stew",
                    "dinner", "lunch", "breakfast", "omelet", "burger",
                    "sandwich"],
              plur=["noodles", "dumplings", "vegetables", "pancakes", "fries"],
              pos=["warm", "fresh", "tasty", "delicious", "perfect", "great",
                   "good", "excellent", "lovely", "amazing", "nice",
                   "wonderful"],
              neg=["cold", "bland", "greasy", "awful", "terrible", "bad",
                   "horrible", "disappointing", "expensive"],
              own=["our", "my"], main=True, revisit=True, redo="order it"),
            G(sing=["bread", "toast"], plur=["crackers", "cookies"],
              pos=["fresh", "crisp", "warm", "tasty", "delicious"],
              neg=["stale", "soggy", "bland", "cold"],
              own=["our", "my"], main=True, revisit=True),
            G(sing=["cake", "pie", "pudding"], plur=["pastries", "muffins"],
              pos=["fresh", "sweet", "warm", "tasty", "delicious", "lovely",
                   "perfect"],
              neg=["stale", "soggy", "bland", "expensive", "awful"],
              own=["our", "my"], main=True, revisit=True, redo="order it"),
            G(sing=["coffee", "tea", "hot chocolate"],
              pos=["smooth", "warm", "sweet", "perfect", "lovely", "great",
                   "delicious"],
              neg=["bitter", "cold", "weak", "bland", "awful", "expensive"],
              own=["my"], main=True, revisit=True),
            G(sing=["restaurant", "cafe", "diner"],
              pos=["clean", "cozy", "quiet", "bright", "charming", "warm",
                   "lovely"],
              neg=["dirty", "noisy", "crowded", "cold", "messy", "gloomy"],
              revisit=True, redo="eat there"),
            G(plur=["tables"], pos=["clean"], neg=["dirty", "messy"],
              revisit=True),
        ],
        people=[("the staff", True), ("the waiter", False),
                ("the waitress", False), ("the cook", False),
                ("the owner", False)],
        places=["restaurant", "cafe", "bakery", "diner", "market"],
        acts=["dinner", "lunch at the cafe", "breakfast",
              "eating at the diner", "the meal"],
        neutral=["we cooked pasta at home",
                 "i had toast and tea for breakfast",
                 "my sister ordered the fish",
                 "we shared a pizza after work",
                 "the cafe opened at eight",
                 "i tried the soup of the day",
                 "we ate dinner in the garden",
                 "my father made rice and beans",
                 "we bought bread and cheese at the market"],
    ),
    "weather": dict(
        groups=[
            G(sing=["weather", "day", "morning", "afternoon", "evening",
                    "weekend"],
              pos=["sunny", "bright", "warm", "calm", "pleasant", "lovely",
                   "beautiful", "perfect", "peaceful", "nice", "wonderful"],
              neg=["cold", "rainy", "gloomy", "wet", "awful", "terrible",
                   "horrible", "dull", "bad"],
              main=True, dur=True),
            G(sing=["air"], pos=["crisp", "fresh", "warm", "clean"],
              neg=["cold", "wet", "bitter"], main=True),
            G(sing=["breeze", "wind"], pos=["gentle", "warm", "pleasant"],
              neg=["cold", "bitter", "loud"]),
            G(sing=["sky"], pos=["bright", "beautiful", "lovely"],
              neg=["gloomy", "ugly"]),
            G(plur=["streets"], pos=["clean", "quiet", "peaceful"],
              neg=["wet", "cold", "gloomy"]),
        ],
        people=[],
        places=["park", "beach", "lake", "river"],
        acts=["the walk", "a walk in the park", "the bike ride",
              "the picnic"],
        times=WEATHER_TIMES,
        neutral=["it snowed a little in the evening",
                 "the forecast said rain for tuesday",
                 "we checked the weather before the walk",
                 "the clouds moved in after lunch",
                 "i took an umbrella to work",
                 "the wind changed in the afternoon",
                 "the sun came out around noon",
                 "we stayed inside and played cards"],
    ),
    "books": dict(
        groups=[
            G(sing=["book", "novel", "story", "chapter", "ending", "plot",
                    "poem", "mystery"],
              plur=["chapters", "characters", "poems", "stories"],
              pos=["clever", "beautiful", "charming", "wonderful", "exciting",
                   "brilliant", "great", "good", "lovely", "funny", "sweet",
                   "gentle", "excellent", "amazing"],
              neg=["boring", "dull", "confusing", "tedious", "sad", "weak",
                   "poor", "awful", "bad", "disappointing", "slow"],
              own=["my"], main=True, dur=True, redo="read it"),
            G(sing=["library", "bookshop"],
              pos=["quiet", "cozy", "calm", "peaceful", "bright", "warm",
                   "clean"],
              neg=["noisy", "crowded", "cold", "gloomy", "messy"],
              revisit=True),
        ],
        people=[("the librarian", False), ("the author", False),
                ("the staff", True)],
        places=["library", "bookshop", "book club"],
        acts=["reading the novel", "finishing the book", "the book club",
              "reading in bed"],
        neutral=["i read a chapter on the train",
                 "my book club met on thursday",
                 "i borrowed a novel from the library",
                 "the book was about a sailor and his ship",
                 "i finished the last page before bed",
                 "my aunt gave me a book of poems",
                 "we picked a new book for next month"],
    ),
    "trips": dict(
        groups=[
            G(sing=["train", "bus", "ferry", "taxi", "car"],
              pos=["clean", "comfortable", "quiet", "quick", "warm"],
              neg=["dirty", "crowded", "noisy", "late", "slow", "cramped",
                   "cold", "uncomfortable"],
              own=["our"]),
            G(sing=["flight", "ride", "journey", "drive", "trip"],
              pos=["smooth", "quick", "pleasant", "relaxing", "calm", "great",
                   "good", "comfortable"],
              neg=["slow", "stressful", "awful", "tedious", "uncomfortable",
                   "expensive"],
              own=["our", "my"], main=True, dur=True),
            G(plur=["seats"], pos=["comfortable", "clean"],
              neg=["uncomfortable", "dirty", "cramped", "broken"]),
            G(sing=["hotel", "room", "hostel", "cabin"], plur=["rooms"],
              pos=["clean", "cozy", "comfortable", "quiet", "bright", "lovely",
                   "charming", "nice", "warm"],
              neg=["dirty", "noisy", "cramped", "cold", "messy", "expensive",
                   "ugly", "uncomfortable", "gloomy"],
              own=["our"], main=True, revisit=True, redo="stay there"),
            G(sing=["beach", "town", "village", "museum", "park", "lake",
                    "market"],
              plur=["shops"],
              pos=["beautiful", "lovely", "peaceful", "calm", "charming",
                   "clean", "wonderful", "amazing", "quiet"],
              neg=["crowded", "dirty", "noisy", "ugly", "boring", "dull",
                   "disappointing"],
              main=True, revisit=True),
        ],
        people=[("the driver", False), ("the guide", False),
                ("the host", False), ("the staff", True),
                ("the other passengers", True)],
        places=["beach", "lake", "museum", "zoo", "market", "seaside"],
        acts=["the trip", "the flight", "the train ride", "the tour",
              "the long drive"],
        neutral=["we took the train to the coast",
                 "i packed my bag the night before",
                 "our flight left at nine",
                 "we stayed two nights in a small town",
                 "the bus stopped at every village",
                 "my cousin drove us to the airport",
                 "we bought a map at the station",
                 "we walked along the river after lunch"],
    ),
    "music": dict(
        groups=[
            G(sing=["song", "album", "melody", "tune", "chorus"],
              plur=["songs", "lyrics"],
              pos=["beautiful", "lovely", "cheerful", "sweet", "gentle",
                   "calm", "brilliant", "great", "wonderful"],
              neg=["sad", "dull", "boring", "annoying", "awful", "weak",
                   "bland"],
              main=True, dur=True, redo="listen to it"),
            G(sing=["concert", "show", "festival", "gig"],
              pos=["exciting", "amazing", "fantastic", "brilliant", "great",
                   "wonderful", "excellent"],
              neg=["loud", "crowded", "noisy", "boring", "awful", "expensive",
                   "disappointing"],
              main=True, revisit=True, dur=True),
            G(plur=["drums", "guitars"], pos=["brilliant", "excellent"],
              neg=["loud", "annoying", "awful"]),
        ],
        people=[("the band", False), ("the singer", False),
                ("the crowd", False), ("the drummer", False)],
        places=["concert", "festival", "concert hall", "jazz club"],
        acts=["the concert", "the show", "the festival",
              "listening to the album"],
        neutral=["we listened to the radio in the car",
                 "my brother plays the piano on sundays",
                 "the band played for two hours",
                 "i bought a new album on friday",
                 "we went to a concert in the city",
                 "my friend sang in the choir",
                 "the singer played three new songs"],
    ),
    "work": dict(
        groups=[
            G(sing=["meeting", "presentation", "shift", "workday", "project",
                    "interview"],
              pos=["calm", "quick", "smooth", "pleasant", "good", "great",
                   "relaxed"],
              neg=["stressful", "boring", "tedious", "awful", "awkward",
                   "slow", "terrible"],
              own=["my", "our"], main=True, dur=True),
            G(sing=["office", "break room", "workshop"],
              pos=["clean", "quiet", "bright", "calm", "cozy", "comfortable",
                   "warm"],
              neg=["noisy", "messy", "cold", "crowded", "dirty", "gloomy"]),
            G(plur=["computers", "printers"], pos=["quick"],
              neg=["slow", "broken"]),
        ],
        people=[("my boss", False), ("the manager", False),
                ("the team", False), ("my coworkers", True),
                ("the new intern", False), ("the client", False)],
        places=["office", "conference", "workshop"],
        acts=["the meeting", "work", "the presentation", "my shift",
              "the interview"],
        neutral=["i sent three emails before lunch",
                 "the meeting started at ten",
                 "my boss asked for a new report",
                 "we moved to a new office",
                 "i worked from home on friday",
                 "the team planned the next project",
                 "i printed the slides for the meeting"],
    ),
    "pets": dict(
        groups=[
            G(sing=["dog", "cat", "puppy", "kitten", "rabbit", "parrot",
                    "hamster", "pony"],
              plur=["puppies", "kittens"],
              pos=["playful", "gentle", "sweet", "friendly", "calm", "happy",
                   "funny", "clever", "cheerful", "lovely", "charming"],
              neg=["grumpy", "lazy", "noisy", "loud", "messy", "angry", "sad",
                   "tired", "annoying", "dirty", "bored", "lonely"],
              own=["my", "our"], main=True),
            G(sing=["walk"],
              pos=["pleasant", "calm", "relaxing", "lovely", "peaceful"],
              neg=["cold", "wet", "stressful"], own=["our"], main=True),
            G(sing=["pet shop"], pos=["clean", "bright", "quiet"],
              neg=["dirty", "noisy", "crowded", "messy"], revisit=True),
        ],
        people=[("the vet", False), ("the dog walker", False),
                ("our neighbor", False)],
        places=["park", "dog park", "vet", "pet shop", "beach"],
        acts=["walking the dog", "playing with the kitten",
              "the visit to the vet", "feeding the cat"],
        neutral=["i walked the dog before breakfast",
                 "the cat slept on the sofa all day",
                 "we took the rabbit to the vet",
                 "my sister fed the fish in the morning",
                 "the puppy chased a ball in the garden",
                 "we bought a new bed for the cat",
                 "the parrot learned a new word"],
    ),
}

# Templates.  Slots:
#   S1 S2 S3   "the" + noun        V1..  was/were     A1.. adjective of it
#   A1b        second adjective for item 1            ADV1 adverb fitting A1
#   O1         "my"/"our"/"the" + noun                PR1  it/they
#   N1 N2      bare countable singular noun           P1 P2 bare plural noun
#   X1         bare noun (any number)                 REDO1 verb phrase
#   PER PV PA  person, was/were, person adjective
#   F  feeling adjective   A0 general adjective   T time   R relative
#   PL place   ACT activity   DAYN day noun   SPAN span of time
# Flags: E = item 1 must be something one can enjoy/hate (a "main" group),
#        REVISIT, DUR = item 1 group must have that flag.
POS_TEMPLATES = [
    ("{O1} {V1} {A1} and {S2} {V2} {A2}.", ""),
    ("{S1} {V1} {A1}, and {PER} {PV} {PA}.", ""),
    ("i really enjoyed {S1} {T}.", "E"),
    ("we loved {S1} because {PR1} {V1} {ADV1} {A1}.", "E"),
    ("{T}, {S1} {V1} {A1} and i felt {F}.", ""),
    ("my {R} said {S1} {V1} {ADV1} {A1}.", ""),
    ("we had a {A0} time at the {PL} {T}.", ""),
    ("{S1} {V1} {A1}, so we will go back again soon.", "REVISIT"),
    ("it was a {A1} {N1} with {A2} {P2}.", ""),
    ("{O1} {V1} {ADV1} {A1} {T}.", ""),
    ("i felt {F} after {ACT} {T}.", ""),
    ("{S1} {V1} {A1} and {A1b}, just as we hoped.", ""),
    ("it was a {A1} {N1}, and i would happily {REDO1} again.", ""),
    ("everyone agreed that {S1} {V1} {A1}.", ""),
    ("my {R} and i thought {S1} {V1} {A1}.", ""),
    ("{S1} {V1} {A1}, and the whole day felt {A0}.", ""),
    ("the best part of the week was {S1}, which {V1} {A1}.", "E SING"),
    ("i was {F} because {S1} {V1} {ADV1} {A1}.", ""),
    ("{PER} {PV} {PA} and {S1} {V1} {A1}.", ""),
    ("thanks to the {A1} {X1}, our {DAYN} was {A0}.", ""),
    ("i think {O1} {V1} {A1} and {A1b}.", ""),
    ("{S1} {V1} {A1} and {A1b}, and {PER} {PV} {PA}.", ""),
    ("we spent {SPAN} at the {PL}, and it was {A0}.", ""),
    ("my {R} loved {S1}, and so did i.", "E"),
    ("{T}, we found {S1} {A1} and {A1b}.", ""),
    ("{O1} {V1} {A1}, {S2} {V2} {A2}, and {S3} {V3} {A3}.", ""),
    ("i would say {S1} {V1} {A1} overall.", ""),
    ("{S1} {V1} {A1} from start to finish.", "DUR"),
    ("my trip to the {PL} was {A0}, and {S1} {V1} {A1}.", "E"),
    ("our visit to the {PL} was {A0} because {S1} {V1} {A1}.", "E"),
]

NEG_TEMPLATES = [
    ("{O1} {V1} {A1} and {S2} {V2} {A2}.", ""),
    ("{S1} {V1} {A1}, and {PER} {PV} {PA}.", ""),
    ("i really hated {S1} {T}.", "E"),
    ("we left early because {S1} {V1} {ADV1} {A1}.", ""),
    ("{T}, {S1} {V1} {A1} and i felt {F}.", ""),
    ("my {R} said {S1} {V1} {ADV1} {A1}.", ""),
    ("we had a {A0} time at the {PL} {T}.", ""),
    ("{S1} {V1} {A1}, so we will not go back.", "REVISIT"),
    ("it was a {A1} {N1} with {A2} {P2}.", ""),
    ("{O1} {V1} {ADV1} {A1} {T}.", ""),
    ("i felt {F} after {ACT} {T}.", ""),
    ("{S1} {V1} {A1} and {A1b}, which was a shame.", ""),
    ("it was a {A1} {N1}, and i will never {REDO1} again.", ""),
    ("everyone agreed that {S1} {V1} {A1}.", ""),
    ("my {R} and i thought {S1} {V1} {A1}.", ""),
    ("{S1} {V1} {A1}, and the whole day felt {A0}.", ""),
    ("the worst part of the week was {S1}, which {V1} {A1}.", "E SING"),
    ("i was {F} because {S1} {V1} {ADV1} {A1}.", ""),
    ("{PER} {PV} {PA} and {S1} {V1} {A1}.", ""),
    ("because of the {A1} {X1}, our {DAYN} was {A0}.", ""),
    ("i wanted to like {S1}, but {PR1} {V1} {A1}.", "E"),
    ("{S1} {V1} {A1} and {A1b}, and {PER} {PV} {PA}.", ""),
    ("we spent {SPAN} at the {PL}, and it was {A0}.", ""),
    ("my {R} hated {S1}, and so did i.", "E"),
    ("{T}, we found {S1} {A1} and {A1b}.", ""),
    ("{O1} {V1} {A1}, {S2} {V2} {A2}, and {S3} {V3} {A3}.", ""),
    ("sadly, {O1} {V1} {A1} and {A1b}.", ""),
    ("{S1} {V1} {A1} from start to finish.", "DUR"),
    ("my trip to the {PL} was {A0}, and {S1} {V1} {A1}.", "E"),
    ("our visit to the {PL} was {A0} because {S1} {V1} {A1}.", "E"),
]

NEU_TEMPLATES = [
    ("{NEU}.", ""),
    ("{T}, {NEU}.", ""),
    ("my {R} and i talked about {S1} {T}.", "E"),
    ("i wrote about {S1} in my diary {T}.", "E"),
    ("we went to the {PL} with my {R} {T}.", ""),
    ("{T}, my {R} told me about {S1}.", "E"),
]

PROMPTS = [
    "the movie was", "the film was", "the plot was", "the ending was",
    "the actors were", "the jokes were", "the cinema was", "the seats were",
    "the soup was", "the pizza was", "our dinner", "my coffee",
    "the bread was", "the cake was", "the waiter was", "the staff were",
    "the restaurant was", "the weather was", "the sky was", "the morning",
    "the air was", "the book was", "the novel", "my book", "the library was",
    "the train was", "the flight was", "our hotel", "the beach was",
    "my trip to the", "our visit to the", "the driver was", "the guide was",
    "the concert was", "the song was", "the album", "the band was",
    "the meeting was", "my boss", "the office was", "my shift",
    "the presentation", "my dog", "the cat was", "the puppy",
    "our walk", "the vet was", "i really enjoyed", "i really hated",
    "we loved the", "my friend said", "my friend and i", "we had a",
    "it was a", "i felt", "the best part", "the worst part",
    "thanks to the", "i wanted to", "everyone agreed that", "on saturday",
    "last weekend", "this morning", "we spent the",
]


def least_used(rng, words, counts, exclude=()):
    cands = [w for w in words if w not in exclude]
    m = min(counts[w] for w in cands)
    best = [w for w in cands if counts[w] == m]
    return rng.choice(best)


def adverb_for(rng, adj):
    return rng.choice(ADV_NON_GRADABLE if adj in NON_GRADABLE else ADV_GRADABLE)


def pick_item(rng, topic, sent, need, main_only=False, flag=None,
              exclude_nouns=(), only_group=None):
    """Choose (group, noun, plural) from a topic.

    need: "sing_count" (countable singular), "sing", "plur", or "any".
    The first three nouns of each list are the typical ones and are drawn
    three times as often as the rest; "main" groups are drawn twice as often.
    """
    key = "pos" if sent == "pos" else "neg"
    options = []
    for g in topic["groups"]:
        if only_group is not None and g is not only_group:
            continue
        if sent != "neu" and not g[key]:
            continue
        if main_only and not g["main"]:
            continue
        if flag == "REVISIT" and not g["revisit"]:
            continue
        if flag == "DUR" and not g["dur"]:
            continue
        if flag == "REDO" and not g["redo"]:
            continue
        if need in ("sing_count", "sing", "any"):
            for i, n in enumerate(g["sing"]):
                if need == "sing_count" and n in MASS_NOUNS:
                    continue
                options.append((g, n, False, 3 if i < 3 else 1))
        if need in ("plur", "any"):
            for i, n in enumerate(g["plur"]):
                options.append((g, n, True, 3 if i < 3 else 1))
    options = [o for o in options if o[1] not in exclude_nouns
               and o[1] + "s" not in exclude_nouns]
    if not options:
        return None
    # choose a group first (so small groups still get used), then a noun
    groups = []
    for o in options:
        if o[0] not in groups:
            groups.append(o[0])
    # main groups (the film, the soup, the dog) twice as often as the rest
    g = rng.choices(groups, weights=[2 if x["main"] else 1 for x in groups])[0]
    opts = [o for o in options if o[0] is g]
    o = rng.choices(opts, weights=[o[3] for o in opts])[0]
    return o[:3]


def fill(rng, template, flags, topic, sent, counts):
    slots = set(re.findall(r"\{(\w+)\}", template))
    flags = set(flags.split())
    vals = {}
    lex_key = "pos" if sent == "pos" else "neg"
    used_nouns = []
    used_adjs = []
    group1 = None
    for k in ("1", "2", "3"):
        if not any(s.endswith(k) and s[:-1] in ("S", "V", "A", "O", "PR", "N",
                                               "P", "X", "ADV", "REDO")
                   for s in slots) and "A" + k + "b" not in slots:
            continue
        if "N" + k in slots:
            need = "sing_count"
        elif "P" + k in slots:
            need = "plur"
        elif k == "1" and "SING" in flags:
            need = "sing"
        else:
            need = "any"
        flag = None
        if k == "1":
            flag = next((f for f in ("REVISIT", "DUR") if f in flags), None)
            if "REDO1" in slots:
                flag = "REDO"
        # "it was a clever film with funny jokes": the plural comes from the
        # same noun group as the singular
        only_group = group1 if (k == "2" and "N1" in slots
                                and "P2" in slots) else None
        item = pick_item(rng, topic, sent, need,
                         main_only=(k == "1" and "E" in flags), flag=flag,
                         exclude_nouns=used_nouns, only_group=only_group)
        if item is None:
            return None
        g, noun, plural = item
        if k == "1":
            group1 = g
        used_nouns.append(noun)
        vals["S" + k] = "the " + noun
        dets = ["the"] + (g["own"] if not plural else [])
        vals["O" + k] = rng.choice(dets) + " " + noun
        vals["V" + k] = "were" if plural else "was"
        vals["PR" + k] = "they" if plural else "it"
        vals["N" + k] = noun
        vals["P" + k] = noun
        vals["X" + k] = noun
        vals["REDO" + k] = g["redo"] or ""
        if sent != "neu":
            if not set(g[lex_key]) - set(used_adjs):
                return None
            a = least_used(rng, g[lex_key], counts, exclude=used_adjs)
            used_adjs.append(a)
            vals["A" + k] = a
            vals["ADV" + k] = adverb_for(rng, a)
            if "A" + k + "b" in slots:
                if len(g[lex_key]) < 2:
                    return None
                vals["A" + k + "b"] = least_used(rng, g[lex_key], counts,
                                                 exclude=(a,))
    if {"PER", "PV", "PA"} & slots:
        if not topic["people"]:
            return None
        per, plural = rng.choice(topic["people"])
        vals["PER"] = per
        vals["PV"] = "were" if plural else "was"
        vals["PA"] = least_used(rng, PERSON_POS if sent == "pos"
                                else PERSON_NEG, counts)
    if "F" in slots:
        vals["F"] = least_used(rng, FEEL_POS if sent == "pos" else FEEL_NEG,
                               counts)
    if "A0" in slots:
        vals["A0"] = least_used(rng, GENERAL_POS if sent == "pos"
                                else GENERAL_NEG, counts)
    vals["T"] = rng.choice(topic.get("times", TIMES))
    vals["R"] = rng.choice(RELATIVES)
    if "PL" in slots:
        vals["PL"] = rng.choice(topic["places"])
    if "ACT" in slots:
        vals["ACT"] = rng.choice(topic["acts"])
    vals["DAYN"] = rng.choice(DAY_NOUNS)
    vals["SPAN"] = rng.choice(SPANS)
    if "NEU" in slots:
        vals["NEU"] = rng.choice(topic["neutral"])
    s = template.format(**{k: vals.get(k, "") for k in slots})
    s = re.sub(r"\ba (?=[aeiou])", "an ", s)
    return s


REPEAT_OK = {"the", "and", "was", "were", "with", "which", "because"}


def check_sentence(s):
    if not re.fullmatch(r"[a-z]+(,? [a-z]+)*\.", s):
        return False
    # no repeated content word ("the day was perfect ... the whole day")
    ws = [w for w in words_of(s) if len(w) >= 3 and w not in REPEAT_OK]
    if len(ws) != len(set(ws)):
        return False
    n = len(s.split())
    return MIN_WORDS <= n <= MAX_WORDS


def words_of(s):
    return re.findall(r"[a-z]+", s)


def generate(seed=SEED):
    rng = random.Random(seed)
    counts = collections.Counter()
    pos_set, neg_set = set(POSITIVE_WORDS), set(NEGATIVE_WORDS)
    topic_names = sorted(TOPICS)
    out = {"pos": [], "neg": [], "neu": []}
    seen = set()
    targets = {"pos": N_POSITIVE, "neg": N_NEGATIVE, "neu": N_NEUTRAL}
    templates = {"pos": POS_TEMPLATES, "neg": NEG_TEMPLATES,
                 "neu": NEU_TEMPLATES}
    neutral_clause_uses = collections.Counter()
    used_templates = set()
    template_uses = collections.Counter()

    def draw(sent, prefix=None):
        """Try once to add a new line of the given sentiment."""
        topic = TOPICS[rng.choice(topic_names)]
        # sentences that open with their subject ("the soup was ...") are
        # the most natural ones: draw those templates three times as often
        template, flags = rng.choices(
            templates[sent],
            weights=[3 if t.startswith(("{S1}", "{O1}", "{PER}")) else 1
                     for t, _ in templates[sent]])[0]
        s = fill(rng, template, flags, topic, sent, counts)
        if s is None or s in seen or not check_sentence(s):
            return False
        if prefix is not None and not re.match(re.escape(prefix) + "[ ,]", s):
            return False
        ws = set(words_of(s))
        if sent == "pos" and ws & neg_set:
            return False
        if sent == "neg" and ws & pos_set:
            return False
        clause = None
        if sent == "neu":
            if ws & (pos_set | neg_set):
                return False
            if template_uses[(sent, template)] >= N_NEUTRAL // 6:
                return False
            clause = next((c for c in topic["neutral"] if c in s), None)
            if clause is not None and neutral_clause_uses[clause] >= 1:
                return False
        if clause is not None:
            neutral_clause_uses[clause] += 1
        seen.add(s)
        used_templates.add((sent, template))
        template_uses[(sent, template)] += 1
        out[sent].append(s)
        for w in words_of(s):
            counts[w] += 1
        return True

    # 1) make sure every prompt opens at least one line (alternating tone)
    for i, p in enumerate(PROMPTS):
        sent = "pos" if i % 2 == 0 else "neg"
        for _ in range(50000):
            if draw(sent, prefix=p):
                break
    # 2) fill up to the targets
    for sent in ("pos", "neg", "neu"):
        tries = 0
        while len(out[sent]) < targets[sent]:
            tries += 1
            if tries > 200000:
                raise RuntimeError("could not generate enough %s lines" % sent)
            draw(sent)
    lines = out["pos"] + out["neg"] + out["neu"]
    rng.shuffle(lines)
    return lines, out, used_templates


def validate(lines):
    pos_set, neg_set = set(POSITIVE_WORDS), set(NEGATIVE_WORDS)
    assert not (pos_set & neg_set), pos_set & neg_set
    # every sentiment adjective used by the generator is in a lexicon
    for t in TOPICS.values():
        for g in t["groups"]:
            assert set(g["pos"]) <= pos_set, set(g["pos"]) - pos_set
            assert set(g["neg"]) <= neg_set, set(g["neg"]) - neg_set
    for lst, ref in ((PERSON_POS, pos_set), (FEEL_POS, pos_set),
                     (GENERAL_POS, pos_set), (PERSON_NEG, neg_set),
                     (FEEL_NEG, neg_set), (GENERAL_NEG, neg_set)):
        assert set(lst) <= ref, set(lst) - ref
    corpus_words = collections.Counter(w for s in lines for w in words_of(s))
    missing = [w for w in POSITIVE_WORDS + NEGATIVE_WORDS
               if corpus_words[w] == 0]
    assert not missing, "lexicon words absent from corpus: %s" % missing
    assert len(set(lines)) == len(lines)
    for s in lines:
        assert check_sentence(s), s
    for p in PROMPTS:
        assert re.fullmatch(r"[a-z]+( [a-z]+){1,3}", p), p
    return corpus_words


def train_tokenizer(texts, path):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from tokenizers import trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        min_frequency=2,
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    assert tok.token_to_id("<|endoftext|>") == 0
    assert tok.token_to_id("<pad>") == 1
    tok.save(path, pretty=False)
    return tok


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--no-tokenizer", action="store_true")
    args = ap.parse_args(argv)

    lines, by_sent, used_templates = generate(args.seed)
    validate(lines)
    os.makedirs(args.out, exist_ok=True)

    def write(name, rows):
        with open(os.path.join(args.out, name), "w", encoding="utf-8",
                  newline="\n") as f:
            f.write("\n".join(rows) + "\n")

    write("corpus.txt", lines)
    write("prompts.txt", PROMPTS)
    write("positive_words.txt", POSITIVE_WORDS)
    write("negative_words.txt", NEGATIVE_WORDS)
    n_words = [len(s.split()) for s in lines]
    print("corpus: %d lines (%d positive, %d negative, %d neutral), "
          "%d distinct (tone, template) pairs used, %.1f words/line"
          % (len(lines), len(by_sent["pos"]), len(by_sent["neg"]),
             len(by_sent["neu"]), len(used_templates),
             sum(n_words) / len(n_words)))
    print("lexicons: %d positive, %d negative words"
          % (len(POSITIVE_WORDS), len(NEGATIVE_WORDS)))
    prefix_hits = sum(any(re.match(re.escape(p) + "[ ,]", s) for s in lines)
                      for p in PROMPTS)
    print("prompts: %d (%d occur as a line prefix in the corpus)"
          % (len(PROMPTS), prefix_hits))
    if prefix_hits < len(PROMPTS):
        print("warning: some prompts do not open any corpus line")

    if not args.no_tokenizer:
        tok_path = os.path.join(args.out, "tokenizer.json")
        tok = train_tokenizer(lines + PROMPTS, tok_path)
        lens = []
        for s in lines + PROMPTS:
            enc = tok.encode(s)
            assert tok.decode(enc.ids) == s, s
            lens.append(len(enc.ids))
        nc = len(lines)
        print("tokenizer: vocab %d, %.2f tokens/line on corpus (max %d), "
              "%.2f on prompts, round trip ok"
              % (tok.get_vocab_size(), sum(lens[:nc]) / nc, max(lens[:nc]),
                 sum(lens[nc:]) / len(lens[nc:])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
