"""Hardware adapters: PyAudio streams, gpiozero LEDs and button, board profiles."""
