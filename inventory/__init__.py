"""Goods, shops and stock: the catalogue, stock per shop and its movement journal."""
