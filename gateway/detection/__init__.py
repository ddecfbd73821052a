"""Classifiers for customer messages: asks for a person, answers the transfer offer, is done, is frustrated.

Linear models trained on the labelled corpus in tests/data/detection (see docs/detection.md), shipped as
model.json and scored in pure Python, with a few rules for the requests that must never be missed.
"""

from __future__ import annotations

from gateway.detection.classifiers import OfferReply, is_done, is_frustrated, offer_reply, wants_human
from gateway.detection.features import normalise
from gateway.detection.model import load
from gateway.detection.rephrase import is_rephrase

__all__ = ["OfferReply", "is_done", "is_frustrated", "is_rephrase", "load", "normalise", "offer_reply",
           "wants_human"]
