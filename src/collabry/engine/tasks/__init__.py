"""Study tools: summary, quiz, flashcards and mind map as validated JSON from the model."""
