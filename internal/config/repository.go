package config

import (
	"fmt"
	"strings"
)

// CheckRepository checks the repository: key, the role table's S3 object:
// s3://BUCKET/KEY, with a key that names an object (not a "folder").
func CheckRepository(s string) error {
	rest, ok := strings.CutPrefix(s, "s3://")
	bucket, key, _ := strings.Cut(rest, "/")
	switch {
	case !ok:
		return fmt.Errorf("want s3://BUCKET/KEY: the role table is an S3 object (written with conditional writes); clients may read it over https or from a copy with eipclaim hosts --from")
	case bucket == "" || key == "" || strings.HasSuffix(key, "/"):
		return fmt.Errorf("want s3://BUCKET/KEY, such as s3://fleet-config/roles.json")
	}
	return nil
}

func (v *validator) repository() {
	if r := v.c.Repository; r != "" {
		if err := CheckRepository(r); err != nil {
			v.add("repository", r, err.Error())
		}
	}
}
