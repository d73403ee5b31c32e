"""Offline speech recognition for menus: grammars built from the menu's choices."""
