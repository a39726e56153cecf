"""Stage 2, text to tokens: the basic_english tokenizer, the vocabulary, hashed n-grams and token tables."""
