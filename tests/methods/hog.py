"""Asks for 16 GB of memory."""
block = bytearray(16 * 1024 ** 3)
