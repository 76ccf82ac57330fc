"""rPPG methods: colour traces in, pulse signals out (POS and CHROM)."""

from pulseloop.vitals.methods.chrom import chrom
from pulseloop.vitals.methods.pos import pos

__all__ = ["chrom", "pos"]
