"""The running example of the course: "He didn't trust him because he knew the secret".

Introduced in Chapter 1 and reused in every chapter.
"""

from __future__ import annotations

__all__ = ["SENTENCE", "TOKENS"]

SENTENCE = "He didn't trust him because he knew the secret"
TOKENS: list[str] = SENTENCE.split()  # 9 tokens; "He" (0) and "he" (5) are both "he"
