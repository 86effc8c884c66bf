"""Villagers' deeds declared with photos, the cadres' review queue, and the village's list."""
