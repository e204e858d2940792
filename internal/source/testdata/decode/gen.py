# Builds the multipart cases the way `cloud-init devel make-mime` does
# (cloudinit/cmd/devel/make_mime.py: MIMEText(content, subtype,
# sys.getdefaultencoding()) per file, with Content-Disposition, attached to a
# MIMEMultipart), with a fixed boundary so that the files are stable.
# Run: python3 gen.py (from this directory).
import gzip
import io
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email import encoders

def part(content, subtype, filename, charset="utf-8"):
    m = MIMEText(content, subtype, charset)
    m.add_header("Content-Disposition", 'attachment; filename="%s"' % filename)
    return m

def multipart(parts, boundary):
    msg = MIMEMultipart(boundary=boundary)
    for p in parts:
        msg.attach(p)
    return msg.as_string().encode()

def gz(data, name):
    # mtime=0: stable bytes.
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0) as f:
        f.write(data)
    open(name, "wb").write(buf.getvalue())

cc = open("cloud-config.yaml").read()
sh = open("script.sh").read()
nokey = open("cloud-config-no-key.yaml").read()
plain = open("plain.yaml").read()

# make-mime -a cloud-config.yaml:cloud-config -a script.sh:x-shellscript (utf-8: base64 parts)
mm = multipart([part(cc, "cloud-config", "cloud-config.yaml"), part(sh, "x-shellscript", "script.sh")], "===============0000000000000000001==")
open("multipart-make-mime.txt", "wb").write(mm)
# the same with us-ascii parts: 7bit
open("multipart-7bit.txt", "wb").write(multipart(
    [part(sh, "x-shellscript", "script.sh", "us-ascii"), part(cc, "cloud-config", "cloud-config.yaml", "us-ascii")],
    "===============0000000000000000002=="))
# a cloud-config without eipclaim, a script, and the eipclaim document as text/plain
open("multipart-plain-part.txt", "wb").write(multipart(
    [part(nokey, "cloud-config", "cloud-config.yaml"), part(sh, "x-shellscript", "script.sh"), part(plain, "plain", "eipclaim.yaml", "us-ascii")],
    "===============0000000000000000003=="))
# the eipclaim document in its own part type
open("multipart-eipclaim-type.txt", "wb").write(multipart(
    [part(sh, "x-shellscript", "script.sh"), part(plain, "x-eipclaim-config", "eipclaim.yaml")],
    "===============0000000000000000004=="))
# none holds it: 3 parts
open("multipart-none.txt", "wb").write(multipart(
    [part(nokey, "cloud-config", "cloud-config.yaml"), part(sh, "x-shellscript", "script.sh"), part("#include\nhttps://example.com/x\n", "x-include-url", "inc.txt")],
    "===============0000000000000000005=="))
# two parts hold it
open("multipart-two.txt", "wb").write(multipart(
    [part(cc, "cloud-config", "cloud-config.yaml"), part(sh, "x-shellscript", "script.sh"), part(plain, "plain", "eipclaim.yaml")],
    "===============0000000000000000006=="))
# a gzip part (application/x-gzip, base64) holding the cloud-config, beside a script
g = MIMEBase("application", "x-gzip")
buf = io.BytesIO()
with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0) as f:
    f.write(cc.encode())
g.set_payload(buf.getvalue())
encoders.encode_base64(g)
g.add_header("Content-Disposition", 'attachment; filename="cloud-config.yaml.gz"')
open("multipart-gzip-part.txt", "wb").write(multipart([part(sh, "x-shellscript", "script.sh"), g], "===============0000000000000000007=="))
# nested multipart
inner = MIMEMultipart(boundary="inner-0008")
inner.attach(part(cc, "cloud-config", "cloud-config.yaml"))
open("multipart-nested.txt", "wb").write(multipart([part(sh, "x-shellscript", "script.sh"), inner], "===============0000000000000000008=="))

gz(plain.encode(), "plain.yaml.gz")
gz(mm, "multipart-make-mime.txt.gz")
gz(sh.encode(), "script.sh.gz")
