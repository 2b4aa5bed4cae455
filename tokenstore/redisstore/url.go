package redisstore

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// The client settings NewClient and NewFromURL give a client unless its URL
// names its own (dial_timeout, read_timeout, write_timeout, max_retries,
// min_retry_backoff, max_retry_backoff, dialer_retries). They make a request that needs Redis
// while Redis is down answer 503 within tens of milliseconds, where
// go-redis's own defaults (5 dial attempts 100 ms apart for each of 4
// tries) take about 1.7 s.
const (
	// DefaultDialTimeout bounds one connection attempt, TLS and
	// authentication included.
	DefaultDialTimeout = 500 * time.Millisecond
	// DefaultReadTimeout and DefaultWriteTimeout bound one command on an
	// open connection: a Redis whose host is gone without closing anything
	// costs this much per try. The slowest script (a logout sweeping a
	// subject's sessions) takes milliseconds.
	DefaultReadTimeout  = 500 * time.Millisecond
	DefaultWriteTimeout = 500 * time.Millisecond
	// DefaultMaxRetries: a command whose connection failed is tried again
	// twice, on a new connection (every script of the Store gives the same
	// answer when it runs again after a lost reply).
	DefaultMaxRetries = 2
	// DefaultMinRetryBackoff and DefaultMaxRetryBackoff bound the pause
	// before a retry (a random pause from the minimum, doubling, capped;
	// go-redis's defaults, 10 ms and 1 s, cost 20-62 ms of pauses alone).
	DefaultMinRetryBackoff = 2 * time.Millisecond
	DefaultMaxRetryBackoff = 16 * time.Millisecond
	// The client dials once per try (go-redis: DialerRetries 1): the tries
	// themselves are the retries.

	// DefaultClusterStateReloadInterval: a cluster client reads the
	// cluster's slot map again this often while it is used. go-redis
	// rereads it on a MOVED answer, or every 60 s; a master that crashed
	// never answers MOVED, so without this a Store would keep failing for
	// up to a minute after its replica took over.
	DefaultClusterStateReloadInterval = time.Second
)

// NewFromURL is New with a client made by NewClient from rawURL, which the
// Store owns: Close closes it. opts.Client must be nil. It is the way to get
// a Store whose requests fail fast while Redis is down:
//
//	store, err := redisstore.NewFromURL(ctx, os.Getenv("REDIS_URL"), redisstore.Options{Keys: keys})
//	if err != nil {
//		log.Fatal(err)
//	}
//	defer store.Close()
func NewFromURL(ctx context.Context, rawURL string, opts Options) (*Store, error) {
	if opts.Client != nil {
		return nil, fmt.Errorf("%w: NewFromURL makes the client: leave Options.Client nil (or call New with your client)", ErrConfig)
	}
	c, err := NewClient(rawURL)
	if err != nil {
		return nil, err
	}
	opts.Client = c
	s, err := New(ctx, opts)
	if err != nil {
		c.Close()
		return nil, err
	}
	s.owned = c
	return s, nil
}

// Close closes the client of a Store made by NewFromURL. A Store made by New
// does not own its client: Close then does nothing.
func (s *Store) Close() error {
	if s.owned == nil {
		return nil
	}
	return s.owned.Close()
}

// NewClient returns a go-redis client for rawURL with the fail-fast
// settings above wherever the URL does not name its own. It does not
// connect. The URL says which deployment it is:
//
//	redis://[user:password@]host:6379[/db]         one server (rediss:// for TLS; unix:///path/redis.sock)
//	redis://host1:6379?addr=host2:6379&addr=...    Redis Cluster: seed nodes (or ?cluster=true with one)
//	redis://[sentinel-user:pw@]sentinel1:26379[/db]?master_name=mymaster&addr=sentinel2:26379&username=app&password=pw
//	                                               Sentinel: the sentinels, the master's name, and the
//	                                               ACL user and password of the master and replicas
//
// Query parameters are go-redis's (redis.ParseURL, redis.ParseClusterURL,
// redis.ParseFailoverURL), plus cluster=true and, for one server,
// dialer_retries. rediss:// verifies the server's certificate against the
// system's roots; for a private CA, build the client yourself (with these
// settings) and call New. Errors wrap ErrConfig and never show a password.
func NewClient(rawURL string) (redis.UniversalClient, error) {
	parsed, err := parseURL(rawURL)
	if err != nil {
		return nil, err
	}
	switch o := parsed.(type) {
	case *redis.ClusterOptions:
		return redis.NewClusterClient(o), nil
	case *redis.FailoverOptions:
		return redis.NewFailoverClient(o), nil
	default:
		return redis.NewClient(o.(*redis.Options)), nil
	}
}

// parseURL returns the *redis.Options, *redis.ClusterOptions or
// *redis.FailoverOptions that rawURL describes, fail-fast settings applied.
func parseURL(rawURL string) (any, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error repeats the URL, password included
		}
		return nil, fmt.Errorf("%w: the Redis URL does not parse: %v", ErrConfig, err)
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: the Redis URL %s: %s", ErrConfig, redactURL(u), fmt.Sprintf(format, args...))
	}
	switch u.Scheme {
	case "redis", "rediss", "unix":
	default:
		return nil, bad("want redis://, rediss:// or unix://")
	}
	q := u.Query()
	cluster := q.Has("addr") && !q.Has("master_name")
	if q.Has("cluster") {
		b, err := strconv.ParseBool(q.Get("cluster"))
		if err != nil {
			return nil, bad("cluster=%q is not true or false", q.Get("cluster"))
		}
		cluster = b
		q.Del("cluster")
	}
	ff := failFast{}
	if !cluster && !q.Has("master_name") && q.Has("dialer_retries") { // go-redis parses it for the others only
		n, err := strconv.Atoi(q.Get("dialer_retries"))
		if err != nil {
			return nil, bad("dialer_retries=%q is not a number", q.Get("dialer_retries"))
		}
		ff.dialerRetriesSet = n
		q.Del("dialer_retries")
	}
	clean := *u
	clean.RawQuery = q.Encode()
	var parsed any
	switch {
	case cluster && q.Has("master_name"):
		return nil, bad("cluster=true and master_name (Sentinel) exclude each other")
	case (cluster || q.Has("master_name")) && u.Scheme == "unix":
		return nil, bad("a unix socket reaches one server: no cluster or Sentinel")
	case cluster:
		o, err := redis.ParseClusterURL(clean.String())
		if err != nil {
			return nil, bad("%v", err)
		}
		o.ClusterStateReloadInterval = DefaultClusterStateReloadInterval
		ff.apply(q, &o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout, &o.MinRetryBackoff, &o.MaxRetryBackoff, &o.MaxRetries, &o.DialerRetries)
		parsed = o
	case q.Has("master_name"):
		o, err := redis.ParseFailoverURL(clean.String())
		if err != nil {
			return nil, bad("%v", err)
		}
		ff.apply(q, &o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout, &o.MinRetryBackoff, &o.MaxRetryBackoff, &o.MaxRetries, &o.DialerRetries)
		parsed = o
	default:
		o, err := redis.ParseURL(clean.String())
		if err != nil {
			return nil, bad("%v", err)
		}
		ff.apply(q, &o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout, &o.MinRetryBackoff, &o.MaxRetryBackoff, &o.MaxRetries, &o.DialerRetries)
		parsed = o
	}
	return parsed, nil
}

// failFast applies the Default* settings to the fields a URL's query q
// leaves unset.
type failFast struct {
	dialerRetriesSet int // from the query, for one server; 0: unset
}

func (f failFast) apply(q url.Values, dial, read, write, minBackoff, maxBackoff *time.Duration, retries, dialerRetries *int) {
	if !q.Has("dial_timeout") {
		*dial = DefaultDialTimeout
	}
	if !q.Has("read_timeout") {
		*read = DefaultReadTimeout
		if !q.Has("write_timeout") {
			*write = DefaultWriteTimeout
		}
	} // else an unset write timeout follows the read timeout (go-redis)
	if !q.Has("min_retry_backoff") {
		*minBackoff = DefaultMinRetryBackoff
	}
	if !q.Has("max_retry_backoff") {
		*maxBackoff = DefaultMaxRetryBackoff
	}
	if !q.Has("max_retries") {
		*retries = DefaultMaxRetries
	}
	switch {
	case f.dialerRetriesSet != 0:
		*dialerRetries = f.dialerRetriesSet
	case !q.Has("dialer_retries"):
		*dialerRetries = 1
	}
}

// redactURL is u for messages: its password and a password query parameter
// (Sentinel's master password) replaced.
func redactURL(u *url.URL) string {
	c := *u
	if c.User != nil {
		if _, has := c.User.Password(); has {
			c.User = url.UserPassword(c.User.Username(), "xxxxx")
		}
	}
	q := c.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		c.RawQuery = q.Encode()
	}
	return c.String()
}
