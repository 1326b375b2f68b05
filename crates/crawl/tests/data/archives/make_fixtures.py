"""Writes the archive fixtures with Python's own zipfile/tarfile, an implementation independent
of the crawler's reader and of simweb's writer. Run from this directory: python3 make_fixtures.py
(outputs are committed; ZIP timestamps differ between runs, nothing else)."""
import gzip, io, tarfile, zipfile

class Unseekable(io.RawIOBase):
    """Forces zipfile to write data descriptors after each member."""
    def __init__(self): self.buf = bytearray()
    def writable(self): return True
    def write(self, b): self.buf += b; return len(b)
    def seekable(self): return False

u = Unseekable()
with zipfile.ZipFile(u, 'w', compression=zipfile.ZIP_DEFLATED) as z:
    z.writestr('docs/alpha.txt', b'alpha ' * 200)
    z.writestr('beta.bin', bytes(range(256)) * 4)
    z.writestr('dir/', b'')
    z.writestr('gamma/\u00e9t\u00e9.txt', b'summer')
open('python_descriptors.zip', 'wb').write(bytes(u.buf))

b = io.BytesIO()
with zipfile.ZipFile(b, 'w', compression=zipfile.ZIP_DEFLATED, allowZip64=True) as z:
    with z.open('big/one.txt', 'w', force_zip64=True) as f:
        f.write(b'zip64 member ' * 100)
    z.writestr('two.txt', b'second')
open('python_zip64.zip', 'wb').write(b.getvalue())

long = 'deep/' + 'x' * 120 + '/\u0444\u043e\u0442\u043e ' + 'y' * 40 + '.txt'

def build(fmt):
    b = io.BytesIO()
    with tarfile.open(fileobj=b, mode='w', format=fmt) as t:
        for name, data in [('short.txt', b'short one'), (long, b'long one ' * 100), ('link', None), ('sub/', None)]:
            info = tarfile.TarInfo(name)
            info.mtime = 1700000000
            if name == 'link':
                info.type = tarfile.SYMTYPE
                info.linkname = 'short.txt'
                t.addfile(info)
            elif data is None:
                info.type = tarfile.DIRTYPE
                t.addfile(info)
            else:
                info.size = len(data)
                t.addfile(info, io.BytesIO(data))
    return b.getvalue()

open('python_pax.tar', 'wb').write(build(tarfile.PAX_FORMAT))
open('python_gnu.tar.gz', 'wb').write(gzip.compress(build(tarfile.GNU_FORMAT), mtime=0))
