"""What only the chapters use: the running example, hand-built heads and figures.

* :mod:`mha.course.example` (Chapter 1): the running sentence and its toy embeddings;
* :mod:`mha.course.lenses` (Chapter 3): three hand-built heads for the running example;
* :mod:`mha.course.plotting` (all chapters): reproducible SVG figures;
* :mod:`mha.course.head_figures` (Chapters 2 to 4), :mod:`mha.course.encoder_figures`
  (Chapter 6): the chapters' diagrams.

It may import the library (:mod:`mha`); the library never imports it.
"""

from mha.course import encoder_figures, example, head_figures, lenses, plotting

__all__ = ["example", "lenses", "plotting", "head_figures", "encoder_figures"]
