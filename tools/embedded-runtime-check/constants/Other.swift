// A second file, so that the client module is built as several objects like every product module.
func unusedHere() {}
