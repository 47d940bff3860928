"""Realistic datasets of any size for development, demos and benchmarks."""

from templator.dev.seed.loader import SeedPlan, SeedReport, seed_database

__all__ = ["SeedPlan", "SeedReport", "seed_database"]
