"""Cases and their contact lists."""
