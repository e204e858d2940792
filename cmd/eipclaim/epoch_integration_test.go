package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/eipclaim/eipclaim/internal/claim"
	"github.com/eipclaim/eipclaim/internal/table"
)

// epochWorld is a world with a role table, a role db with an on_holder
// hook that records its EIPCLAIM_EPOCH, and another instance that claims
// the role now and then (as its eipclaim would: the EIP, its tags, the
// table's entry).
type epochWorld struct {
	*world
	t           *testing.T
	s3          *s3.Client
	conf, hooks string
	alloc       string
	other       peer
}

// peer is another instance: its id and private IP.
type peer struct{ id, ip string }

func newEpochWorld(t *testing.T) *epochWorld {
	w := &epochWorld{world: newWorld(t, ""), t: t}
	w.alloc, _ = w.allocate()
	o := w.tw.NewInstance()
	w.other = peer{o.ID, o.PrivateIP}
	w.s3 = s3.NewFromConfig(w.moto.Config(), func(o *s3.Options) { o.DisableLogOutputChecksumValidationSkipped = true })
	if _, err := w.s3.CreateBucket(t.Context(), &s3.CreateBucketInput{Bucket: aws.String("fleet-config")}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	w.conf, w.hooks = filepath.Join(dir, "eipclaim.yaml"), filepath.Join(dir, "hook.epoch")
	w.configure(w.alloc)
	return w
}

// configure points role db at the EIP alloc.
func (w *epochWorld) configure(alloc string) {
	doc := "repository: s3://fleet-config/roles.json\nroles:\n  db:\n    allocation_id: " + alloc +
		"\n    hooks:\n      on_holder: [\"/bin/sh\", \"-c\", \"echo $EIPCLAIM_EPOCH >> " + w.hooks + "\"]\n"
	if err := os.WriteFile(w.conf, []byte(doc), 0o600); err != nil {
		w.t.Fatal(err)
	}
}

// setTag sets the EIP's epoch tag to v, or deletes it (nil).
func (w *epochWorld) setTag(v *string) {
	w.t.Helper()
	var err error
	if v == nil {
		_, err = w.ec2.DeleteTags(w.t.Context(), &ec2.DeleteTagsInput{Resources: []string{w.alloc}, Tags: []types.Tag{{Key: aws.String(claim.TagEpoch)}}})
	} else {
		_, err = w.ec2.CreateTags(w.t.Context(), &ec2.CreateTagsInput{Resources: []string{w.alloc}, Tags: []types.Tag{{Key: aws.String(claim.TagEpoch), Value: v}}})
	}
	if err != nil {
		w.t.Fatal(err)
	}
}

func (w *epochWorld) tag() string {
	w.t.Helper()
	for _, tg := range w.address(w.alloc).Tags {
		if aws.ToString(tg.Key) == claim.TagEpoch {
			return aws.ToString(tg.Value)
		}
	}
	return ""
}

// table returns the stored table, decoded without its checks.
func (w *epochWorld) table() *table.Document {
	w.t.Helper()
	out, err := w.s3.GetObject(w.t.Context(), &s3.GetObjectInput{Bucket: aws.String("fleet-config"), Key: aws.String("roles.json")})
	var nk *s3types.NoSuchKey
	if errors.As(err, &nk) {
		return table.New()
	}
	if err != nil {
		w.t.Fatal(err)
	}
	b, _ := readBody(out)
	d := table.New()
	if err := json.Unmarshal(b, d); err != nil {
		w.t.Fatal(err)
	}
	return d
}

func (w *epochWorld) putTable(d *table.Document) {
	w.t.Helper()
	b, _ := json.Marshal(d)
	if _, err := w.s3.PutObject(w.t.Context(), &s3.PutObjectInput{Bucket: aws.String("fleet-config"), Key: aws.String("roles.json"), Body: bytes.NewReader(b)}); err != nil {
		w.t.Fatal(err)
	}
}

// otherClaimed: the other instance took the role with the given epoch (in
// the table), and the EIP's epoch tag now says tag (nil: deleted).
func (w *epochWorld) otherClaimed(epoch int64, tag *string) {
	w.t.Helper()
	w.associate(w.alloc, w.other.id)
	if _, err := w.ec2.CreateTags(w.t.Context(), &ec2.CreateTagsInput{Resources: []string{w.alloc}, Tags: []types.Tag{{Key: aws.String(claim.TagHolder), Value: aws.String(w.other.id)}}}); err != nil {
		w.t.Fatal(err)
	}
	w.setTag(tag)
	d := w.table()
	d.Roles["db"] = table.Entry{Name: "db", PrivateIP: w.other.ip, Holder: w.other.id, Epoch: epoch, UpdatedAt: time.Now().UTC()}
	w.putTable(d)
}

// claim runs `eipclaim claim` for db (--force: the other instance is
// healthy) and checks that the epoch is want everywhere: the outcome, the
// tag, the table's entry (naming this instance) and the hook.
func (w *epochWorld) claim(want int64, args ...string) (stdout, stderr string) {
	w.t.Helper()
	stdout, stderr, code := eipclaim(w.t, append([]string{"claim", "--role", "db", "--config", w.conf, "--force", "--timeout", "60s"}, args...)...)
	if code != 0 {
		w.t.Fatalf("claim: exit %d, want 0\n%s\n%s", code, stdout, stderr)
	}
	ws := strconv.FormatInt(want, 10)
	if !strings.Contains(stdout, "epoch "+ws) && !strings.Contains(stdout, `"epoch": `+ws) {
		w.t.Errorf("claim does not say epoch %d:\n%s", want, stdout)
	}
	if got := w.tag(); got != ws {
		w.t.Errorf("tag %s = %q, want %d", claim.TagEpoch, got, want)
	}
	if e := w.table().Roles["db"]; e.Epoch != want || e.Holder != w.instance {
		w.t.Errorf("the table's entry for db: epoch %d holder %s; want %d %s (the write was dropped?)\n%s", e.Epoch, e.Holder, want, w.instance, stdout)
	}
	b, _ := os.ReadFile(w.hooks)
	lines := strings.Fields(string(b))
	if len(lines) == 0 || lines[len(lines)-1] != ws {
		w.t.Errorf("on_holder got EIPCLAIM_EPOCH %v (last), want %d", lines, want)
	}
	return stdout, stderr
}

// TestEpochSurvivesTags: the epoch tag is a tag anyone can edit. Deleted,
// set to garbage, set to 9223372036854775807, set back below the role
// table's, or the role given a new EIP: the next epoch is above the table's
// and the tag's, the table's entry is written (hosts --from sends clients
// to the new holder), hooks never get a negative epoch, a value that is
// not an epoch is reported (claim's text and --json, status), and other
// roles' writers and hosts --from keep working.
func TestEpochSurvivesTags(t *testing.T) {
	w := newEpochWorld(t)
	w.claim(1)
	if _, errs, code := eipclaim(t, "register", "--role", "ext", "--address", "192.0.2.1", "--config", w.conf); code != 0 {
		t.Fatalf("register ext: exit %d\n%s", code, errs)
	}

	t.Run("tag deleted", func(t *testing.T) {
		w.otherClaimed(7, nil)
		w.claim(8)
	})
	t.Run("tag garbage", func(t *testing.T) {
		w.otherClaimed(12, aws.String("garbage"))
		out, _ := w.claim(13)
		if !strings.Contains(out, "WARNING") || !strings.Contains(out, `"garbage" is not an epoch`) {
			t.Errorf("claim's text does not report the tag:\n%s", out)
		}
	})
	t.Run("tag max int64", func(t *testing.T) {
		w.otherClaimed(13, aws.String("9223372036854775807"))
		out, _ := w.claim(14, "--json")
		var o struct {
			Epoch         int64    `json:"epoch"`
			EpochProblems []string `json:"epoch_problems"`
		}
		if err := json.Unmarshal([]byte(out), &o); err != nil || o.Epoch != 14 || len(o.EpochProblems) == 0 || !strings.Contains(o.EpochProblems[0], "above the greatest epoch") {
			t.Errorf("claim --json: %+v %v, want epoch 14 and the problem\n%s", o, err, out)
		}
		// Every writer of every role, and every hosts --from, works.
		if _, errs, code := eipclaim(t, "register", "--role", "ext2", "--address", "192.0.2.2", "--config", w.conf); code != 0 {
			t.Errorf("register ext2: exit %d\n%s", code, errs)
		}
	})
	t.Run("table greater than tag", func(t *testing.T) {
		w.otherClaimed(30, aws.String("5"))
		w.claim(31)
	})
	t.Run("tag set back under an entry of this holder", func(t *testing.T) {
		w.setTag(aws.String("2"))
		out, _ := w.claim(31) // already held: the table's epoch is this holder's
		if !strings.Contains(out, "already held") {
			t.Errorf("want already held:\n%s", out)
		}
	})
	t.Run("hosts --from", func(t *testing.T) {
		hosts := filepath.Join(t.TempDir(), "hosts")
		if err := os.WriteFile(hosts, []byte("127.0.0.1\tlocalhost\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, errs, code := eipclaim(t, "hosts", "--from", "s3://fleet-config/roles.json", "--out", hosts); code != 0 {
			t.Fatalf("hosts --from: exit %d\n%s%s", code, out, errs)
		}
		b, _ := os.ReadFile(hosts)
		if !regexp.MustCompile(`\n` + regexp.QuoteMeta(w.privateIP()) + ` +db\n`).Match(b) {
			t.Errorf("hosts --from does not send db's clients to the holder %s:\n%s", w.privateIP(), b)
		}
	})
	t.Run("new EIP for the role", func(t *testing.T) {
		alloc2, eip2 := w.allocate()
		w.alloc = alloc2
		w.configure(alloc2)
		w.claim(32)
		if e := w.table().Roles["db"]; e.PublicIP != eip2 {
			t.Errorf("the table's entry has public IP %s, want the new EIP %s", e.PublicIP, eip2)
		}
	})
	t.Run("negative entry of another role", func(t *testing.T) {
		// The entry eipclaim up to this fix wrote for a tag of
		// 9223372036854775807: it stops no writer of another role.
		d := w.table()
		d.Roles["old"] = table.Entry{Name: "old", PrivateIP: "192.0.2.9", Holder: "i-0123456789abcdef0", Epoch: -9223372036854775808, UpdatedAt: time.Now().UTC()}
		w.putTable(d)
		w.otherClaimed(40, aws.String("40"))
		w.claim(41)
		if _, errs, code := eipclaim(t, "register", "--role", "ext3", "--address", "192.0.2.3", "--config", w.conf); code != 0 {
			t.Errorf("register ext3: exit %d\n%s", code, errs)
		}
		if _, errs, code := eipclaim(t, "register", "--role", "old", "--address", "192.0.2.9", "--config", w.conf); code != 0 || w.table().Roles["old"].Epoch != 1 {
			t.Errorf("register old over its negative entry: exit %d, epoch %d\n%s", code, w.table().Roles["old"].Epoch, errs)
		}
	})
}

// TestStatusWarnsOfStoppedHolder: a stopped holder that the EIP and the
// role table still name, an epoch tag that is not an epoch, and a table
// entry naming another holder than the EIP's are warned of by status.
func TestStatusWarnsOfStoppedHolder(t *testing.T) {
	w := newEpochWorld(t)
	w.otherClaimed(5, aws.String("garbage"))
	if _, err := w.ec2.StopInstances(t.Context(), &ec2.StopInstancesInput{InstanceIds: []string{w.other.id}}); err != nil {
		t.Fatal(err)
	}
	out, errs, code := eipclaim(t, "status", "--role", "db", "--config", w.conf)
	if code != 0 {
		t.Fatalf("status: exit %d\n%s\n%s", code, out, errs)
	}
	if !regexp.MustCompile(`\n` + "db" + ` +\S+ +` + w.alloc + ` +` + w.other.id + ` +invalid `).MatchString(out) {
		t.Errorf("status's EPOCH column does not say invalid:\n%s", out)
	}
	for _, want := range []string{
		"WARNING db: the holder " + w.other.id + " is stopped, and the EIP and the role table still name it",
		`WARNING db: the EIP's epoch tag eipclaim:epoch: "garbage" is not an epoch`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status does not say %q:\n%s", want, out)
		}
	}
	// The EIP moves; the table still names the stopped holder.
	d := w.table()
	w.claim(6)
	w.putTable(d)
	out, _, _ = eipclaim(t, "status", "--role", "db", "--config", w.conf, "--json")
	if !strings.Contains(out, "the role table names "+w.other.id+" (epoch 5), but the EIP is held by "+w.instance) {
		t.Errorf("status --json does not warn of the stale entry:\n%s", out)
	}
}
