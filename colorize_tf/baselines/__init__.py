"""Comparator systems, trained on the same sampled pixels as the main regressor.

Families (``pipelines.train --family NAME``; each is a model directory with
``model.json`` whose ``family`` names it, loaded through colorize_tf.registry):

``regressor``
    The paper's network (colorize_tf.regressor).
``mean_chroma``
    Every pixel gets the mean training U, V.
``hog_svr``
    Zhu, Zhao and Guo: per pixel the luminance and a 36-d HOG of the 16x16
    block around it (feature blocks ``luma,hog``), one linear SVR for U and
    one for V (scikit-learn ``LinearSVR``, standardised inputs).
``richart``
    Richart et al.: colours quantised into 9 classes (k-means on the training
    U, V; the paper uses a 3x3 SOM), an MLP classifier with two hidden layers
    of 50 ReLU units on a 3x3 luminance patch (feature block ``patch`` with
    ``--patch_size 3``), Adam with learning rate 0.001; a pixel gets its
    predicted class's colour.
"""

from . import hog  # noqa: F401  (registers the luma / hog descriptor blocks)
from .models import BASELINES, LinearSVRChroma, MeanChroma, RichartClassifier  # noqa: F401  (registers the families)
