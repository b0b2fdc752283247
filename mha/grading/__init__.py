"""Coursework: exercise checkers, the nbgrader course and the student edition.

* :mod:`mha.grading.checks`, :mod:`mha.grading.encoder_checks`: checkers that name the
  classic bugs (the chapters' check cells call them);
* :mod:`mha.grading.coursework`: the nbgrader course built from the chapters
  (``python -m mha.grading.coursework``);
* :mod:`mha.grading.student_edition`: the book without solutions.

It may import the library and :mod:`mha.course`; neither imports it.
"""

from mha.grading import checks, encoder_checks

__all__ = ["checks", "encoder_checks"]
