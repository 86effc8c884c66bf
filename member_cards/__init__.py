"""Member cards: signed QR payloads, revocation, card sheets (built by the cards issue)."""
