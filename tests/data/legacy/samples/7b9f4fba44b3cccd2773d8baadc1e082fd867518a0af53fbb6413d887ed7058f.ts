clip 4 first line
clip 4 second line
