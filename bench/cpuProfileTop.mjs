import fs from 'node:fs';
const file = process.argv[2];
const p = JSON.parse(fs.readFileSync(file));
const byId = new Map(p.nodes.map(n => [n.id, n]));
const self = new Map();
const dt = p.timeDeltas; let total = 0;
for (let i = 0; i < p.samples.length; i++) { const n = byId.get(p.samples[i]); const cf = n.callFrame; const key = `${cf.functionName || '(anon)'} ${cf.url.split('/').slice(-2).join('/')}:${cf.lineNumber}`; self.set(key, (self.get(key) || 0) + dt[i]); total += dt[i]; }
const byFile = new Map();
for (let i = 0; i < p.samples.length; i++) { const cf = byId.get(p.samples[i]).callFrame; let f = cf.url.includes('node_modules/') ? cf.url.split('node_modules/')[1].split('/')[0] : (cf.url.split('/').slice(-2).join('/') || cf.functionName); byFile.set(f, (byFile.get(f) || 0) + dt[i]); }
console.log('total ms', total / 1000);
for (const [k, v] of [...byFile].sort((a, b) => b[1] - a[1]).slice(0, 15)) console.log((v / total * 100).toFixed(1) + '%', k);
console.log('---');
for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 30)) console.log((v / total * 100).toFixed(1) + '%', k);
