package image

// parsePE is a placeholder until the PE loader (pe.go) lands; delete this
// file then.
func parsePE(data []byte) (*Image, error) {
	return nil, &UnsupportedError{What: "PE (loader not built yet)"}
}
