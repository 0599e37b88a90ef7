"""The family of negotiation games: the env protocol (:mod:`.spec`), the games and the registry
(:mod:`.registry`). See ``docs/games.md``."""
