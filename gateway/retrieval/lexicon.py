"""The words retrieval ignores and the support vocabulary it treats as one, in the six languages Baton understands
(en, es, fr, de, pt, it).

STOP: function words and question words, which say nothing about what a question is about.
CONCEPTS: each line is one concept, its words in any of the six languages; a word (after normalising and stemming,
gateway.retrieval.text) counts as the concept's first word, so "livraison", "Versand" and "delivery" meet the
article about shipping. Written from the project's own knowledge and questions (tests/data/knowledge/train.jsonl);
no word of the held-out split was added after it was written.
"""

from __future__ import annotations

STOP = frozenset(str.split("""
a about above after again all also am an and any anything are as at be been before being but by can could did do
does doing done for from get gets getting got had has have having hello hey hi how i if in into is it its just know
let like me more much my need of off on once only or other our out over own please same should so some still such
tell than thank thanks that the their them then there these they this those through to too under until up us very
want wanted was we were what when where which while who whom why will with would you your yours something thing
things stuff there's whats what's im i'm id i'd dont don't cant can't ive i've youre you're
el la los las un una unos unas de del al y o u que qué en es son por para con sin se su sus mi mis tu tus yo me te
nos le les lo como cómo cuando cuándo donde dónde cual cuál cuales quien puedo puede pueden hay muy mas más ya
esta este esto estos estas está estoy tengo tiene tienen hola gracias quiero quisiera saber sobre
le la les un une des de du d l au aux et ou que qu qui quoi en est sont pour par avec sans se sa son ses mon ma mes
ton ta tes je j me m te t nous vous il elle ils elles on y ce cet cette ces comment quand où quel quelle quels
quelles combien est-ce puis peux peut pouvez ai as avez a bonjour merci veux voudrais savoir sur dans pas ne n
der die das den dem des ein eine einen einem einer und oder ist sind für mit ohne sich sein seine mein meine dein
ich mir mich du dich wir uns ihr sie es wie wann wo welche welcher welches was kann können könnt kannst habe hast hat
haben gibt bei zu zum zur im in an auf aus von vom nach hallo danke möchte will wissen über nicht noch man
o a os as um uma uns umas de do da dos das e ou que em no na nos nas é são por para com sem se seu sua seus suas
meu minha eu me te você vocês ele ela como quando onde qual quais quem posso pode podem há tem têm muito olá obrigado
obrigada quero queria gostaria saber sobre
il lo la i gli le un uno una di del della dei delle e o che in è sono per con senza si suo sua mio mia io mi ti noi
voi lui lei come quando dove quale quali chi posso può possono c'è ci ho hai ha abbiamo ciao grazie voglio vorrei
sapere su nel nella al alla
perfect great ok okay good fine cool awesome nice sure yes yeah well also anyway btw hmm oh ah cheers
parfait super génial genial d'accord ok bien alors aussi perfecto vale bueno buena pues también también
perfekt gut toll prima super okay also auch ja nein perfeito ótimo otimo beleza bom boa então também
perfetto ottimo bene allora anche certo
use used using usar uso usa utiliser utilise utilizar utilizo usare benutzen benutze verwenden
get obtain receive consigo conseguir obtener obtengo recibir obtenir obtiens recevoir bekomme bekommen erhalte
erhalten kriege obtenho obter receber ottengo ottenere ricevere
serai sera seront será serán wird werde werden sarà saro sarò vai vou non não nao euer eure ihr
cuanto cuanta cuantos quanto quanta quantos combien wieviel viel
outra outro otra otro autre altro altra doesn isn didn won wont aren
meus minhas teus seus estao here aqui aquí ici hier qui many now ahora maintenant jetzt agora adesso ora type
  tipo typ faut necesito
brauche brauchen preciso serve bisogno vos votre notre nuestro nuestra vuestro vuestra unser unsere vosso vossa
nosso nossa vostro vostra vostre vostri nostro nostra put poner mettre stellen colocar mettere usano usan utilisent
benutzen nutzen usam selbst myself moi-meme mismo misma mesmo mesma stesso dall dalla della nell
write escribir écrire schreiben escrever scrivere leave dejar laisser hinterlassen deixar lasciare
do make hacer hago faire fais machen mache fazer faço fare faccio
"""))

CONCEPTS = """
ship shipping deliver delivery delivered dispatch dispatched postage envio envío enviar enviam enviado entrega
  entregar
  livraison livrer livré expédition expédier expedier versand versenden versandt lieferung liefern liefert
  geliefert zustellung
  envio entrega entregue spedizione spedire spedite spedito consegna consegnare consegnato
return returns refund refunds exchange send-back devolver devolución devolucion reembolso cambio retour retourner
  rembourser remboursement renvoyer échange rückgabe rücksendung zurückgeben zurückschicken zurücksenden erstattung
  rückerstattung umtausch devolver devolução reembolso troca reso restituire rimborso cambio restituzione
cost price prices fee fees charge charges expensive cheap costs much coste costo precio cuesta cuestan tarifa coût
  prix coûte tarif frais kosten kostet preis gebühr custo preço custa taxa costo prezzo costa tariffa spese
track tracking trace follow where-is seguimiento rastrear rastreo localizar suivre suivi tracer sendungsverfolgung
  verfolgen nachverfolgen rastreamento rastrear acompanhar tracciare tracciamento seguire
order orders purchase bought buy compré acheté gekauft comprei comprato pedido pedidos compra commande
  commandes achat bestellung bestellungen bestellt kauf
  encomenda encomendas ordine ordini acquisto
parcel package packet paquete paquet colis paket sendung pacote encomenda pacco
bulb bulbs light-bulb lightbulb bombilla bombillas ampoule ampoules glühbirne birne leuchtmittel
  lampadina lampadine
lamp lamps light lights lámpara lámparas lampe lampes leuchte leuchten luminária candeeiro lampada lampade
warranty guarantee guaranteed garantía garantia garantie gewährleistung garanzia
smart smart-home alexa google-home homekit inteligente domótica connecté connectée intelligent vernetzt
  inteligente intelligente domotica
open opening opens ouverture apertura abertura hours horario horarios abierto abren abre heures horaires
  ouvert ouvrez ouvre öffnungszeiten
  geöffnet offen erreichbar horário aberto abrem orario orari aperto aprite
weekend weekends saturday sunday sábado domingo fin-de-semana samedi dimanche week-end wochenende samstag sonntag
  sábado domingo fim-de-semana sabato domenica fine-settimana
cancel cancellation cancelar cancelación anular annuler annulation stornieren storniere stornierung storno cancelar
  cancelamento annullare cancellare annullamento disdire
contact phone email call teléfono llamar correo téléfone téléphone appeler courriel telefon anrufen e-mail
  telefone ligar telefono chiamare
pay payment payments paying pagar pago pagos payer paiement bezahlen zahlung zahlen zahlungsmethode pagamento
  pagamenti pagare
card cards credit-card tarjeta carte karte kreditkarte cartão carta
invoice invoices receipt factura recibo facture reçu rechnung quittung beleg fatura recibo fattura ricevuta
account accounts profile cuenta perfil compte profil konto kundenkonto conta perfil account profilo
password contraseña clave mot-de-passe passwort kennwort senha palavra-passe
delete remove erase borrar eliminar supprimer effacer löschen entfernen apagar excluir eliminare cancellare
address dirección direccion adresse anschrift lieferadresse endereço morada indirizzo
change modify update edit ändere änderst cambiar modificar changer modifier ändern änderen aktualisieren
  alterar mudar modificare
  cambiare
damage damaged broken rota defect defective faulty dañado roto defectuoso endommagé cassé défectueux beschädigt kaputt
  defekt danificado partido quebrado defeituoso danneggiato rotto difettoso
missing lost never-arrived perdido extraviado perdu manquant verloren fehlt angekommen perdido extraviado perso
  smarrito mancante
gift present regalo cadeau geschenk gutschein presente prenda regalo
voucher coupon discount code promo cupón descuento código bon réduction remise promo code gutschein rabatt
  rabattcode cupão cupom desconto código buono sconto codice
customs duty duties tax taxes vat aduana aranceles impuestos iva douane droits taxes tva zoll zölle steuer mwst
  alfândega impostos imposto iva dogana dazi tasse
international abroad country countries worldwide internacional extranjero país países international étranger
  pays ausland international länder weltweit estrangeiro exterior internazionale estero paese paesi
assemble assembly install installation mount montar montaje instalar instalación monter montage installer
  installation montieren montage aufbauen installieren montar montagem instalar montare montaggio installare
clean cleaning limpio limpiar limpieza pulisco pulisci nettoyer nettoyage reinigen reinigung pflege limpar
  limpeza pulire pulizia
dimmable dimmer dim intensity intensidad intensité intensidade intensità regular regulable atenuable dimmable
  variateur dimmbar dimmer regulável dimerizável dimmerabile
reset restart setze factory-reset restablecer reiniciar réinitialiser redémarrer zurücksetzen neustarten repor
  reiniciar
  resettare ripristinare riavviare
connect pair pairing wifi wi-fi network conectar emparejar red connecter appairer réseau verbinden koppeln netzwerk
  wlan conectar emparelhar rede connettere collegare associare rete
app application aplicación appli anwendung aplicativo applicazione
store shop showroom tienda magasin boutique geschäft laden filiale loja negozio
size dimension dimensions measure height tamaño medida medidas dimensiones taille mesure größe maße abmessungen
  tamanho medida medidas dimensione dimensioni misura misure
spare part parts replacement repuesto recambio pièce pièces rechange ersatzteil ersatzteile peça peças reposição
  ricambio ricambi
energy power watt watts consumption energía consumo potencia énergie consommation puissance energie verbrauch
  leistung energia consumo potência potenza
battery batteries rechargeable cordless wireless kabellos kabellose sans-fil inalámbrica inalámbrico batería
  pila recargable batterie rechargeable akku batterie aufladbar
  bateria recarregável batteria ricaricabile
outdoor outdoors garden exterior jardín extérieur dehors jardin außen draußen garten exterior jardim esterno giardino
waterproof water rain ip44 ip65 impermeable agua lluvia étanche eau pluie wasserdicht wasser regen
  impermeável água chuva impermeabile acqua pioggia
long lange prend prende leva lleva take takes taking tarda tardan tardar demora demoram demorar dauert dauern
  dauer délai temps tempo vuole
  ci-vuole
arrive arrived arrival arrives kam llegar llegó llega llegará arriver arrivé arrivée arrive ankommen angekommen kommt
  chegar chegou chega chegará arrivare arrivato arrivata arriva arrivo
weight weigh weighs heavy peso pesa pesan poids pèse pesant gewicht wiegt wiegen schwer pesam pesare
height tall high altura alto alta hauteur haut haute höhe hoch groß altezza
cable cord cables kabel câble cabo cavo
colour color colours colors finish finishes farbe farben couleur couleurs colores acabado acabados cor cores
  colore colori finitura finiture
forgot forget forgotten olvidado olvidé olvide oublié oublie vergessen esqueci esqueceu dimenticato dimenticata
sell sells selling sold venden vendéis vendes vender vendez vendre vendu verkaufen verkauft verkauf vendem
  vendemos vendete vendere vendono
support service customer-service atención servicio soporte assistance kundenservice kundendienst support
  atendimento suporte assistenza servizio
method methods método métodos méthode méthodes methode methoden método métodos metodo metodi
business businesses company companies empresa empresas entreprise entreprises unternehmen firma firmen azienda
  aziende
electricity électricité electricidad strom electricidade elettricità
switzerland suisse suiza schweiz suíça suica svizzera
eu ue europe europa european européenne europäische
outside fuera hors außerhalb fora fuori
floor pie pe lampadaire stehlampe stehleuchte piantana
work works working funktionieren funktioniert funcionan funciona fonctionne fonctionnent funzionano funziona
  funcionam
instalment instalments installment installments plazos cuotas fois raten ratenzahlung prestações parcelas rate
express urgent urgente exprés expresso schnell eilig
review reviews rating reseña reseñas opinión avis évaluation bewertung rezension avaliação opinião recensione
  recensioni
collect pick-up pickup recoger retirer abholen recolher levantar ritirare
data datos données daten dados dati personal personales personnelles persönliche pessoais personali privacy
  privacidad confidentialité datenschutz privacidade
safe safety secure seguro seguros sûr sûres sécurité sicher sicherheit segurança sicuro sicure sicurezza
children child kids niños enfants kinder crianças bambini cameretta kinderzimmer
stock out-of-stock sold-out agotado épuisé rupture ausverkauft esgotado esaurito esaurita available disponible
  disponibles verfügbar disponível disponibile restock restocked
newsletter subscribe unsubscribe baja boletín suscribir darse-de-baja abonner désabonner désinscrire abonnieren
  abmelden inscrever cancelar-subscrição iscriversi disiscriversi
""".strip()

#: Phrases that mean one concept ("where is my order?" asks to track it), found in the normalised text before it is
#: split into words.
PHRASES = {
    "=track": """where is my|where's my|where is the|donde esta mi|donde esta el|ou est mon|ou est ma|ou en est ma
        |ou en est mon|wo ist meine|wo ist mein|wo bleibt meine|wo bleibt mein|onde esta a minha|onde esta o meu
        |onde esta minha|onde esta meu|dov'e il mio|dov'e la mia|dove il mio|dove la mia""",
    "=password": "mot de passe|palavra passe",
    "=return": "money back|dinero de vuelta|argent en retour|geld zuruck|dinheiro de volta|soldi indietro",
    "=arrive": "shown up|show up|turned up",
    "=long": "when will|when do i get|when can i expect",
}
