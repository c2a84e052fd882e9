"""Plain data code (no fairseq registration): corpus reading, BPE, binarization, blocks."""
