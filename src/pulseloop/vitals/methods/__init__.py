"""rPPG methods: colour traces in, pulse signals out (POS, CHROM and PBV)."""

from pulseloop.vitals.methods.chrom import chrom
from pulseloop.vitals.methods.pbv import pbv
from pulseloop.vitals.methods.pos import pos

__all__ = ["chrom", "pbv", "pos"]
