#!/usr/bin/env python3
"""Every relative link and #anchor in the tracked markdown resolves (docs move; links must follow). Usage: ci/doc-links.py [ROOT]"""
import re, os, sys, subprocess
root = sys.argv[1] if len(sys.argv) > 1 else "."
files = subprocess.run(['git','ls-files','*.md'],cwd=root,capture_output=True,text=True).stdout.split()
files += [f for f in subprocess.run(['git','ls-files','-o','--exclude-standard','*.md'],cwd=root,capture_output=True,text=True).stdout.split()]
def slug(h):
    h = h.strip().lower()
    h = re.sub(r'[^\w\- ]', '', h)
    return h.replace(' ', '-')
def anchors(path):
    out=set(); infence=False
    for line in open(path):
        if line.startswith('```'): infence = not infence; continue
        if infence: continue
        m = re.match(r'^(#{1,6})\s+(.*)', line)
        if m:
            s=slug(m.group(2)); base=s; n=1
            while s in out: s=f"{base}-{n}"; n+=1
            out.add(s)
    return out
bad=0
for f in files:
    text=open(os.path.join(root,f)).read()
    text=re.sub(r'```.*?```','',text,flags=re.S)
    for m in re.finditer(r'\[[^\]]*\]\(([^)\s]+)\)', text):
        link=m.group(1)
        if re.match(r'^[a-z]+:', link): continue
        path, _, frag = link.partition('#')
        target = os.path.normpath(os.path.join(root, os.path.dirname(f), path)) if path else os.path.join(root,f)
        if not os.path.exists(target):
            print(f"{f}: missing file {link}"); bad+=1; continue
        if frag and target.endswith('.md') and frag not in anchors(target):
            print(f"{f}: missing anchor {link}"); bad+=1
print("bad links:", bad)
sys.exit(1 if bad else 0)
