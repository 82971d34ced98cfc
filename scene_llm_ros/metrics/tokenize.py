"""Caption tokenisation that reproduces pycocoevalcap's ``PTBTokenizer`` without Java.

pycocoevalcap runs Stanford CoreNLP 3.4.1's ``PTBTokenizer -preserveLines -lowerCase`` on every
caption and then drops the tokens in :data:`PTB_PUNCTUATION`. BLEU, ROUGE-L, CIDEr and METEOR
all score those tokens, so a native scorer must tokenise the same way or its numbers drift.

This is a small longest-match lexer with the PTB rules that occur in question answering and
captioning text: clitics (``it's`` -> ``it 's``, ``doesn't`` -> ``does n't``), the PTB word splits
(``cannot``, ``gonna``), hyphenated words, numbers with ``. , :`` inside, up to three
slash-joined words (``tan/brown``), letter abbreviations (``e.g.``), a list of title
abbreviations, bracket escapes (``-lrb-``), quotes, dashes, mixed fractions (``5 1/2``), URLs
and e-mail addresses. Not reproduced: SGML/HTML markup, rare forms such as ``rock'n'roll`` or
``y'all``, and one artefact of pycocoevalcap joining all captions into one Java input: a caption
ending in "no." keeps the period there when the *next* caption starts with a digit.
"""
from __future__ import annotations

import re

#: Tokens pycocoevalcap removes after PTB tokenisation. The bracket escapes are listed in upper
#: case there, but ``-lowerCase`` has already lowered them, so ``-lrb-`` survives in the scores.
PTB_PUNCTUATION = frozenset({"''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-", ".", "?",
                             "!", ",", ":", "-", "--", "...", ";"})

_BRACKETS = {"(": "-lrb-", ")": "-rrb-", "[": "-lsb-", "]": "-rsb-", "{": "-lcb-", "}": "-rcb-"}
# PTB splits these words into two tokens.
_SPLIT_WORDS = {"cannot": ("can", "not"), "gonna": ("gon", "na"), "gotta": ("got", "ta"),
                "wanna": ("wan", "na"), "gimme": ("gim", "me"), "lemme": ("lem", "me")}
# Abbreviations whose period stays attached even at the end of a line (checked against
# CoreNLP 3.4.1); others such as "approx." lose it.
_ABBREVIATIONS = ("mr", "mrs", "ms", "dr", "prof", "st", "jr", "sr", "vs", "etc", "inc", "co",
                  "ltd", "corp", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept",
                  "oct", "nov", "dec", "ft")
# Characters the Java tokenizer reads as the ASCII quote, ellipsis or dash they stand for.
_UNICODE_FOLD = str.maketrans({"\u2019": "'", "\u2018": "`", "\u201c": '"', "\u201d": '"',
                               "\u2026": "...", "\u00a0": " ", "\u2013": " -- ",
                               "\u2014": " -- "})

_LETTER = r"[^\W\d_]"
_WORD_PART = r"\w+(?:-\w+){0,2}"
# (kind, pattern). A pattern with a group consumes only the group: the rest is JFlex-style
# trailing context, which still counts towards the longest match.
_RULES = [
    ("word", r"(no\.)\s*\d"),  # "no. 5" keeps its period, a final "no." does not
    ("fraction", r"\d+ \d+/\d+"),  # "5 1/2" is one token, joined by a no-break space
    ("word", rf"({_LETTER}+)n't(?!\w)"),  # "doesn't" -> "does" "n't"
    ("word", r"n't(?!\w)"),
    ("word", r"(?:'s|'re|'ll|'ve|'m|'d)(?!\w)"),
    # Apostrophe inside a word that is not a clitic: "o'clock", "ma'am".
    ("word", rf"{_LETTER}+'(?!(?:s|re|ll|ve|m|d|t)(?!\w)){_LETTER}+"),
    ("word", r"'\d+s(?!\w)"),  # '90s
    # Up to three slash-joined words, each with at most two hyphens (PTB's THING3).
    ("word", rf"{_WORD_PART}(?:/{_WORD_PART}){{1,2}}"),
    ("compound", r"\w+(?:[-.,:]\w+)*"),
    ("word", rf"(?:{_LETTER}\.){{2,}}"),  # e.g. u.s.
    ("word", r"(?:" + "|".join(_ABBREVIATIONS) + r")\.(?!\w)"),
    ("word", r"@\w+"),
    ("word", r"(?:https?://|www\.)[^\s()\[\]{}\"]*[^\s()\[\]{}\".,;:!?']"),
    ("word", r"[\w.+-]+@\w+(?:[.-]\w+)*\.\w+"),
    ("drop", r"\.\.\.+"),
    ("drop", r"-{2,}"),
    ("word", r"[?!]{2,}"),
    ("bracket", r"[()\[\]{}]"),
    ("char", r"\S"),
]
_PATTERNS = [(kind, re.compile(pattern)) for kind, pattern in _RULES]
_SPACE = re.compile(r"\s+")
# In a compound only digits may surround "," and ":" (1,000 and 10:30 stay whole, "left,right"
# does not), so a compound is cut back at the first other use of them.
_NON_NUMERIC_SEPARATOR = re.compile(r"(?<=\D)[,:]|[,:](?=\D)")


def _longest_match(text: str, position: int) -> tuple[str, int]:
    """(rule kind, consumed length) of the rule JFlex would pick at ``position``."""
    best_kind, best_span, best_length = "char", 0, 1
    for kind, pattern in _PATTERNS:
        match = pattern.match(text, position)
        if match is None:
            continue
        end = match.end()
        if kind == "compound":
            cut = _NON_NUMERIC_SEPARATOR.search(text, position, end)
            end = end if cut is None else cut.start()
        consumed = (match.end(1) if pattern.groups else end) - position
        if end - position > best_span:
            best_kind, best_span, best_length = kind, end - position, consumed
    return best_kind, best_length


def ptb_tokens(text: str) -> list[str]:
    """Tokens of ``text`` as pycocoevalcap's PTBTokenizer leaves them, punctuation removed.

    :param text: one caption or answer (newlines count as spaces, as in pycocoevalcap).
    :return: lower-case tokens without the tokens in :data:`PTB_PUNCTUATION`.
    """
    text = text.translate(_UNICODE_FOLD).lower()
    tokens: list[str] = []
    position = 0
    while position < len(text):
        space = _SPACE.match(text, position)
        if space:
            position = space.end()
            continue
        # JFlex semantics: the longest match wins, ties go to the earlier rule.
        kind, length = _longest_match(text, position)
        token = text[position:position + length]
        position += length
        if kind == "bracket":
            tokens.append(_BRACKETS[token])
        elif kind == "fraction":
            tokens.append(token.replace(" ", "\u00a0"))
        elif token in _SPLIT_WORDS:
            tokens.extend(_SPLIT_WORDS[token])
        elif kind != "drop" and token not in PTB_PUNCTUATION and token != '"':
            # A lone '"' becomes `` or '' in PTB, both of which pycocoevalcap drops.
            tokens.append(token)
    return tokens


def ptb_tokenize(text: str) -> str:
    """:func:`ptb_tokens` joined by single spaces, the string form pycocoevalcap scores."""
    return " ".join(ptb_tokens(text))

