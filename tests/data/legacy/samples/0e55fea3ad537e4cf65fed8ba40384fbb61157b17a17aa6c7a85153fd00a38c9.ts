clip 8 first line
clip 8 second line
