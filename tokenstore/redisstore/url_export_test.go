package redisstore

// ParseURL exposes parseURL: the options NewClient would build a client
// with.
func ParseURL(rawURL string) (any, error) { return parseURL(rawURL) }
